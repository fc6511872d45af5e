package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/introspect/image"
)

func init() {
	imageCmd := &cobra.Command{Use: "image", Short: "Prepare memory images for introspection"}
	imageCmd.AddCommand(imageCompressCmd())
	rootCmd.AddCommand(imageCmd)
}

func imageCompressCmd() *cobra.Command {
	var level, frameSize string
	cmd := &cobra.Command{
		Use:   "compress IN OUT",
		Short: "Compress a memory image into seekable zstd",
		Long: `Compress a memory image (raw, QEMU ELF dump, or a zstd stream of either,
which is read for its content) into the zstd seekable format: independent
frames and a seek table. Every command that takes --image reads such a
file by decompressing only the frames it reads (ps on a 256 MiB guest
reads about a quarter of them), where a plain zstd file is decompressed
whole first. Any zstd tool still decompresses it as one stream.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ok, lvl := zstd.EncoderLevelFromString(level)
			if !ok {
				return fmt.Errorf("--level %q: want fastest, default, better or best", level)
			}
			fs, err := parseByteSize(frameSize)
			if err != nil || fs == 0 || fs > math.MaxUint32 {
				return fmt.Errorf("--frame-size %q: want a size from 1 byte to 4 GiB", frameSize)
			}
			return compressImage(args[0], args[1], lvl, int(fs))
		},
	}
	cmd.Flags().StringVar(&level, "level", "best", "zstd level: fastest, default, better, best")
	cmd.Flags().StringVar(&frameSize, "frame-size", "1M", "content of one frame: what a read decompresses at least")
	return cmd
}

func compressImage(inPath, out string, level zstd.EncoderLevel, frameSize int) error {
	src, err := os.Open(inPath)
	if err != nil {
		return fmt.Errorf("image compress: %w", err)
	}
	defer src.Close()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(level), zstd.WithEncoderCRC(true), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return fmt.Errorf("image compress: %w", err)
	}
	defer enc.Close()
	if ist, err := src.Stat(); err == nil {
		if ost, err := os.Stat(out); err == nil && os.SameFile(ist, ost) {
			return fmt.Errorf("image compress: %s is the input itself: give another output path", out)
		}
	}
	dst, err := os.Create(out)
	if err != nil {
		return fmt.Errorf("image compress: %w", err)
	}
	start := time.Now()
	w := bufio.NewWriterSize(dst, 1<<20)
	var file io.Reader = src
	if progress := progressBar("compressing"); progress != nil {
		if st, err := src.Stat(); err == nil && st.Size() > 0 {
			file = &progressReader{r: src, total: uint64(st.Size()), report: progress}
		}
	}
	br := bufio.NewReaderSize(file, 1<<20)
	content := &countingReader{r: br}
	if head, _ := br.Peek(4); image.IsZstd(head) {
		// A zstd dump (one stream, or seekable already) is made seekable
		// from its content.
		dec, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			dst.Close()
			os.Remove(out)
			return fmt.Errorf("image compress %s: %w", inPath, err)
		}
		defer dec.Close()
		content.r = dec
	}
	err = image.WriteSeekable(w, content, image.SeekableOptions{
		FrameSize: frameSize,
		Workers:   runtime.GOMAXPROCS(0),
		Compress:  func(dst, content []byte) ([]byte, error) { return enc.EncodeAll(content, dst), nil },
	})
	if err == nil {
		err = w.Flush()
	}
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("image compress %s: %w", inPath, err)
	}
	ost, err := os.Stat(out)
	if err != nil {
		return fmt.Errorf("image compress: %w", err)
	}
	if jsonOutput {
		return json.NewEncoder(os.Stdout).Encode(map[string]any{
			"in": inPath, "out": out, "content_bytes": content.n, "out_bytes": ost.Size(), "frame_size": frameSize, "seconds": time.Since(start).Seconds(),
		})
	}
	fmt.Printf("%s: %d bytes of content to %d (%.1f%%) in frames of %d, %.1f s\n", out, content.n, ost.Size(),
		100*float64(ost.Size())/float64(max(content.n, 1)), frameSize, time.Since(start).Seconds())
	return nil
}

// progressReader reports how far a read has come.
type progressReader struct {
	r      io.Reader
	done   uint64
	total  uint64
	report func(done, total uint64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.done += uint64(n)
	p.report(min(p.done, p.total), p.total)
	return n, err
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}
