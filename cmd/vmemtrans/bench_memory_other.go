//go:build !linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/vmemtrans/vmemtrans/fabric"
)

type benchVM struct{ proxy, adaptive *fabric.Memory }

func newBenchVM(context.Context, fabric.Transport, uint64, uint64) (*benchVM, error) {
	return nil, fmt.Errorf("bench memory needs linux memfd guest ram: %w", errors.ErrUnsupported)
}

func (vm *benchVM) readMemory(*fabric.Memory, *rand.Rand, uint64, uint64, int) error {
	return errors.ErrUnsupported
}
func (vm *benchVM) readBare(*rand.Rand, int) {}
func (vm *benchVM) readTransport(context.Context, *rand.Rand, int) error {
	return errors.ErrUnsupported
}
func (vm *benchVM) warmAdaptive() error { return errors.ErrUnsupported }
func (vm *benchVM) close()              {}

func threadCPU() time.Duration { return 0 }
