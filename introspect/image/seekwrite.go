package image

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultFrameSize is the content of one frame of a seekable zstd image:
// small enough that reading a structure decompresses little beside it,
// large enough that frames cost only a few percent more space than one
// stream.
const DefaultFrameSize = 1 << 20

// CompressFunc compresses one frame's content into a complete zstd frame,
// appended to dst. It may be called from several goroutines at once.
type CompressFunc func(dst, content []byte) ([]byte, error)

// SeekableOptions say how WriteSeekable cuts and compresses frames.
type SeekableOptions struct {
	FrameSize int          // bytes of content per frame (0: DefaultFrameSize)
	Workers   int          // frames compressed at once (0: 1)
	Compress  CompressFunc // required
}

// WriteSeekable writes src to dst as a seekable zstd file: frames of
// FrameSize bytes of content, each compressed on its own, then the seek
// table. Open reads such a file by decompressing only the frames a read
// touches; any zstd decoder reads it as one stream.
func WriteSeekable(dst io.Writer, src io.Reader, opts SeekableOptions) error {
	size := opts.FrameSize
	if size == 0 {
		size = DefaultFrameSize
	}
	if size < 0 || size > math.MaxUint32 {
		return fmt.Errorf("image: seekable frame size %d out of range", size)
	}
	workers := max(opts.Workers, 1)
	type job struct {
		index   int
		content []byte
		out     []byte
		err     error
		done    chan struct{}
	}
	// Jobs go to the workers and, in the same order, to the writer below;
	// stop ends the reading once the writer has failed.
	work := make(chan *job)
	order := make(chan *job, workers)
	stop := make(chan struct{})
	for range workers {
		go func() {
			for j := range work {
				j.out, j.err = opts.Compress(nil, j.content)
				close(j.done)
			}
		}()
	}
	var readErr error
	go func() {
		defer close(order)
		defer close(work)
		for i := 0; ; i++ {
			content := make([]byte, size)
			n, err := io.ReadFull(src, content)
			if n > 0 {
				j := &job{index: i, content: content[:n], done: make(chan struct{})}
				select {
				case order <- j:
				case <-stop:
					return
				}
				work <- j
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return
			}
			if err != nil {
				readErr = fmt.Errorf("image: read frame %d: %w", i, err)
				return
			}
		}
	}()
	var sizes [][2]uint32
	var err error
	for j := range order {
		<-j.done
		if err != nil {
			continue // drain what was read before the reading stopped
		}
		switch {
		case j.err != nil:
			err = fmt.Errorf("image: compress frame %d: %w", j.index, j.err)
		case len(j.out) > math.MaxUint32:
			err = fmt.Errorf("image: frame %d compressed to %d bytes", j.index, len(j.out))
		default:
			if _, werr := dst.Write(j.out); werr != nil {
				err = fmt.Errorf("image: write frame %d: %w", j.index, werr)
			}
			sizes = append(sizes, [2]uint32{uint32(len(j.out)), uint32(len(j.content))})
		}
		if err != nil {
			close(stop)
		}
	}
	if err == nil {
		err = readErr
	}
	if err != nil {
		return err
	}
	if _, err := dst.Write(appendSeekTable(nil, sizes)); err != nil {
		return fmt.Errorf("image: write seek table: %w", err)
	}
	return nil
}
