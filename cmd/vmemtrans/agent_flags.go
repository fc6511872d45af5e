package main

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
)

// agentFlags reach an in-guest agent (vmemtrans-agent).
type agentFlags struct {
	addr    string
	keyFile string
	timeout time.Duration
}

func (f *agentFlags) register(cmd *cobra.Command, usage string, timeout time.Duration) {
	fl := cmd.Flags()
	fl.StringVar(&f.addr, "agent", "", usage)
	fl.StringVar(&f.keyFile, "agent-key-file", "", "the agent's pre-shared key file (hex, mode 0600; required with --agent)")
	fl.DurationVar(&f.timeout, "agent-timeout", timeout, "longest wait for the agent's answer; an agent that does not answer in time is not asked again for a while")
}

// dial connects to the agent and authenticates.
func (f *agentFlags) dial(ctx context.Context) (*agent.Client, error) {
	if f.keyFile == "" {
		return nil, errors.New("--agent needs --agent-key-file")
	}
	key, err := agent.LoadKey(f.keyFile)
	if err != nil {
		return nil, err
	}
	return agent.Dial(ctx, f.addr, agent.ClientConfig{Key: key, Timeout: f.timeout, Log: log})
}

// closerFunc is a func as an io.Closer.
type closerFunc func() error

func (c closerFunc) Close() error { return c() }
