package linux

import (
	"fmt"
	"testing"
)

// bigWorld is a kernel with n single-threaded processes, all in the IDR.
func bigWorld(n int) *fakeKernel {
	k := newFake()
	swapper := k.task(0, 0, 0, 0, "swapper/0", 0)
	k.group(swapper)
	tasks := make([]uint64, 0, n)
	for i := 1; i <= n; i++ {
		t := k.task(int32(i), int32(i), swapper, 0, fmt.Sprint("p", i), 0)
		k.group(t)
		tasks = append(tasks, t)
	}
	k.taskList(swapper, tasks...)
	k.pidIDR(tasks...)
	return k
}

// BenchmarkTasks reports the ReadVirt batches and ranges one ps issues on a
// 2000-process synthetic kernel: one batch per list step plus one.
func BenchmarkTasks(b *testing.B) {
	k := bigWorld(2000)
	for b.Loop() {
		k.calls, k.ranges = 0, 0
		if _, err := Tasks(k, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(k.calls), "batches/op")
	b.ReportMetric(float64(k.ranges), "ranges/op")
}

// BenchmarkHiddenTasks is the hidden-task check on the same kernel.
func BenchmarkHiddenTasks(b *testing.B) {
	k := bigWorld(2000)
	for b.Loop() {
		k.calls, k.ranges = 0, 0
		rep, err := HiddenTasks(k, Options{})
		if err != nil || len(rep.Hidden) != 0 {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(k.calls), "batches/op")
	b.ReportMetric(float64(k.ranges), "ranges/op")
}
