package hugemem

import "sync"

// Buffer is memory from Map (or, where Map fails, the Go heap) and how to
// give it back.
type Buffer struct {
	B       []byte
	release func()
}

// Alloc returns n bytes from Map, or from the Go heap where Map fails.
func Alloc(n int) Buffer {
	b, release, err := Map(n)
	if err != nil {
		return Buffer{B: make([]byte, n), release: func() {}}
	}
	return Buffer{B: b, release: release}
}

// Release gives the memory back; b.B must not be used after.
func (b Buffer) Release() { b.release() }

// Spare keeps up to Max buffers between uses: a fresh buffer costs a page
// fault per page it is written over (in a VM whose host backs memory
// lazily, 6-13 µs a 4 KiB page), and a sync.Pool would drop them at every
// collection. The zero value keeps none until Max is set.
type Spare struct {
	Max int

	mu      sync.Mutex
	bufs    []Buffer
	closed  bool
	pending int        // buffers Prefill is still making
	ready   *sync.Cond // signalled when one is made; on mu
}

// Get returns a buffer of n bytes: a kept one that can hold n, or a new
// one. While Prefill is making buffers it waits for one rather than fault
// in a buffer of its own beside it.
func (s *Spare) Get(n int) Buffer {
	s.mu.Lock()
	for {
		for i, b := range s.bufs {
			if cap(b.B) >= n {
				s.bufs = append(s.bufs[:i], s.bufs[i+1:]...)
				s.mu.Unlock()
				b.B = b.B[:n]
				return b
			}
		}
		if s.pending == 0 || s.closed {
			break
		}
		s.ready.Wait()
	}
	s.mu.Unlock()
	return Alloc(n)
}

// Put keeps b for a later Get, or releases it when Max are kept or the
// Spare is closed.
func (s *Spare) Put(b Buffer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.bufs) < s.Max && !s.closed {
		s.bufs = append(s.bufs, b)
		return
	}
	b.release()
}

// Prefill makes count buffers of n bytes, faults them in and keeps them,
// on a goroutine of its own: memory a later Get would fault in page by
// page, on the critical path, is made ready while the caller does other
// work. Buffers beyond Max are released; after Close no more are made.
func (s *Spare) Prefill(count, n int) {
	s.mu.Lock()
	if s.ready == nil {
		s.ready = sync.NewCond(&s.mu)
	}
	s.pending += count
	s.mu.Unlock()
	go func() {
		for made := 0; made < count; made++ {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if !closed {
				b := Alloc(n)
				Populate(b.B)
				s.Put(b)
			}
			s.mu.Lock()
			s.pending--
			s.ready.Broadcast()
			s.mu.Unlock()
		}
	}()
}

// Close releases the kept buffers; later Puts release theirs.
func (s *Spare) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for _, b := range s.bufs {
		b.release()
	}
	s.bufs = nil
}

// Len is the number of buffers kept.
func (s *Spare) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bufs)
}
