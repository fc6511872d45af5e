//go:build !linux

package main

import "syscall"

func vmmProcAttr() *syscall.SysProcAttr { return nil }
