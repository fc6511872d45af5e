package linux

import "sort"

// sortTasks orders tasks by pid, then address, for stable reports.
func sortTasks(ts []Task) {
	sort.Slice(ts, func(i, j int) bool {
		if ts[i].PID != ts[j].PID {
			return ts[i].PID < ts[j].PID
		}
		return ts[i].Addr < ts[j].Addr
	})
}
