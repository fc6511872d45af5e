package paging

// cacheKey names a translated page: its size and its first VA under one CR3.
type cacheKey struct {
	cr3, va, size uint64
}

// defaultCacheEntries bounds the cache; a full cache is emptied whole, which
// is cheaper than tracking recency for a cache that usually holds the
// kernel's few large pages and a scan's working set.
const defaultCacheEntries = 1 << 16

var pageSizes = [...]uint64{PageSize4K, PageSize2M, PageSize1G}

// lookup returns the physical address of va from the cache; the caller
// holds t.mu for reading.
func (t *Translator) lookup(cr3, va uint64) (Translation, bool) {
	for _, size := range pageSizes {
		if base, ok := t.cache[cacheKey{cr3, va &^ (size - 1), size}]; ok {
			return Translation{VA: va, PA: base | va&(size-1), PageSize: size}, true
		}
	}
	return Translation{}, false
}

// Invalidate drops every cached translation; call it when the guest may
// have changed its page tables.
func (t *Translator) Invalidate() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCache()
}

// InvalidateRange drops cached translations of pages overlapping
// [va, va+n), of any page size.
func (t *Translator) InvalidateRange(va, n uint64) {
	if n == 0 {
		return
	}
	end := va + n - 1
	if end < va {
		end = ^uint64(0)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen++
	for k := range t.cache {
		if k.va <= end && va <= k.va+(k.size-1) {
			delete(t.cache, k)
		}
	}
}

// dropCache empties the cache; the caller holds t.mu.
func (t *Translator) dropCache() {
	t.gen++
	clear(t.cache)
}

// CacheLen is the number of cached translations.
func (t *Translator) CacheLen() int {
	t.mu.RLock()
	defer t.mu.RUnlock()
	return len(t.cache)
}
