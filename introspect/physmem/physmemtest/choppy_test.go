package physmemtest_test

import (
	"testing"

	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/introspect/physmem"
	"github.com/vmemtrans/vmemtrans/introspect/physmem/physmemtest"
)

func TestChoppyConformance(t *testing.T) {
	physmemtest.Run(t, func(t testing.TB, c []byte) physmem.Reader {
		return &physmemtest.Choppy{R: image.NewBytes(c), Max: 5000, RetryEvery: 3, Seed: 1}
	})
}
