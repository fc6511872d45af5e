package main

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vmemtrans/vmemtrans/fabric"
	"github.com/vmemtrans/vmemtrans/introspect/image"
	"github.com/vmemtrans/vmemtrans/kvmhost"
)

func TestPageLayout(t *testing.T) {
	const p = fabric.PageSize
	got := kvmhost.ImageLayout([]image.Extent{
		{Start: 0, End: 0x9fc00},                 // low RAM ending mid-page: the partial page is dropped
		{Start: 0xa0000 + 10, End: 0xa0000 + 20}, // less than a page: dropped
		{Start: 0x100000 + 1, End: 0x200000},     // starts mid-page: rounded up
		{Start: 0x200000, End: 0x300000},         // touches the previous one: merged
		{Start: 1 << 32, End: 1<<32 + 2*p},
	})
	want := []fabric.PhysRange{{Start: 0, End: 0x9f000}, {Start: 0x101000, End: 0x300000}, {Start: 1 << 32, End: 1<<32 + 2*p}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("ImageLayout = %#v, want %#v", got, want)
	}
	if got := kvmhost.ImageLayout([]image.Extent{{Start: ^uint64(0) - 10, End: ^uint64(0)}}); len(got) != 0 {
		t.Fatalf("a sub-page extent at the top of the address space gave %#v", got)
	}
}

func TestMainhostFlagsChecked(t *testing.T) {
	ok := mainhostFlags{image: "img", vm: "vm0", resident: 25, subhosts: []string{"127.0.0.1:1"}, pskFile: "psk"}
	if err := ok.check(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*mainhostFlags){
		"resident 0":        func(f *mainhostFlags) { f.resident = 0 },
		"resident 101":      func(f *mainhostFlags) { f.resident = 101 },
		"no sub-host":       func(f *mainhostFlags) { f.subhosts = nil },
		"no key file":       func(f *mainhostFlags) { f.pskFile = "" },
		"write ratio":       func(f *mainhostFlags) { f.writeRatio = 1.5 },
		"negative threads":  func(f *mainhostFlags) { f.threads = -1 },
		"bad vm id":         func(f *mainhostFlags) { f.vm = "../x" },
		"too many subhosts": func(f *mainhostFlags) { f.subhosts = make([]string, fabric.MaxSubHost+2) },
	} {
		f := ok
		mutate(&f)
		if err := f.check(); !errors.Is(err, errMainhost) {
			t.Errorf("%s: check = %v, want errMainhost", name, err)
		}
	}
	all := mainhostFlags{image: "img", vm: "vm0", resident: 100}
	if err := all.check(); err != nil {
		t.Errorf("everything resident needs no sub-host: %v", err)
	}
}
