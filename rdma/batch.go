package rdma

import (
	"github.com/vmemtrans/vmemtrans/fabric"
)

// Batches are checked with fabric.StartBatch and finished with
// fabric.FinishBatch, as every Transport does; chains that fail part of a
// batch are recorded with failAll.

// failAll sets err on every entry in idx that has no error yet.
func failAll(batch []fabric.SlotIO, idx []int, err error) {
	for _, i := range idx {
		if batch[i].Err == nil {
			batch[i].Err = err
		}
	}
}
