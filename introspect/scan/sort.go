package scan

import "sort"

func sortMatches(ms []Match) {
	sort.SliceStable(ms, func(i, j int) bool {
		if ms[i].Addr != ms[j].Addr {
			return ms[i].Addr < ms[j].Addr
		}
		return ms[i].Pattern < ms[j].Pattern
	})
}
