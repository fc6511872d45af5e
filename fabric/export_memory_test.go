package fabric

// Test hooks into Memory's internals.

// CacheLen is the number of pages in m's adaptive cache.
func CacheLen(m *Memory) int { return m.cache.len() }

// CacheCapacity is the page bound of m's adaptive cache.
func CacheCapacity(m *Memory) int { return m.cache.capacity }

// SweepCache runs one sweep of m's adaptive cache now.
func SweepCache(m *Memory) { m.cache.sweepOnce() }

// CacheTrust is how long a cache entry may go unobserved.
const CacheTrust = cacheTrust

// ForcePread makes Memories opened until the returned restore runs read
// local pages by pread instead of the SIGBUS view.
func ForcePread() (restore func()) {
	preadOnly = true
	return func() { preadOnly = false }
}
