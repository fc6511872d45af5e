package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/store"
	"github.com/vmemtrans/vmemtrans/rdma"
)

func init() {
	var listen, stateDir, pskFile, rdmaMode, metricsAddr string
	cmd := &cobra.Command{
		Use:   "subhost",
		Short: "Run a sub-host agent: serve VM memory regions over the control protocol",
		Long: `Serve the slot regions of split-memory VMs from a state directory.

Clients authenticate with a per-VM pre-shared key (--psk-file: lines of
"VMID HEXKEY"). Without --psk-file the keys are read from STATE-DIR/psk,
created empty (mode 0600) if absent; "vmemtrans subhost keys add VMID" gives
a VM its key, and key-file changes apply without a restart. A key file open
to group or others is refused.
Pages survive a restart: regions are file-backed under --state-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSubhost(cmd.Context(), listen, stateDir, pskFile, rdmaMode, metricsAddr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:7450", "address to serve on (host:port; port 0 picks a free one)")
	f.StringVar(&stateDir, "state-dir", "", "directory holding the regions (required)")
	f.StringVar(&pskFile, "psk-file", "", "pre-shared key file (default STATE-DIR/psk, created if absent)")
	f.StringVar(&rdmaMode, "rdma", "auto", "RDMA: auto, off, or a device name")
	f.StringVar(&metricsAddr, "metrics", "", "serve Prometheus metrics at http://ADDR/metrics (host:port)")
	_ = cmd.MarkFlagRequired("state-dir")
	cmd.AddCommand(subhostKeysCmd(), subhostRegionsCmd())
	rootCmd.AddCommand(cmd)
}

// subhostInfo is what the agent prints once it listens.
type subhostInfo struct {
	Listen   string `json:"listen"`
	StateDir string `json:"state_dir"`
	PSKFile  string `json:"psk_file"`
	RDMA     bool   `json:"rdma"`
	Metrics  string `json:"metrics,omitempty"` // http address of /metrics
}

func runSubhost(ctx context.Context, listen, stateDir, pskFile, rdmaMode, metricsAddr string) error {
	if pskFile == "" {
		pskFile = filepath.Join(stateDir, "psk")
	}
	if err := ensureStateDir(stateDir); err != nil {
		return err
	}
	keys, created, err := control.EnsureKeyFile(pskFile)
	if err != nil {
		return err
	}
	if created {
		log.Info().Str("file", pskFile).Msg("subhost: created an empty key file")
	}
	if len(keys.VMs()) == 0 {
		log.Warn().Str("file", pskFile).Msgf("subhost: no VM has a key yet: run `vmemtrans subhost keys add VMID --psk-file %s`", pskFile)
	}
	st, err := store.Open(stateDir)
	if err != nil {
		return fmt.Errorf("state dir %s: %w", stateDir, err)
	}
	defer st.Close()
	reportCorruptRegions(st)
	responder, err := rdma.ResponderFor(rdmaMode, log)
	if err != nil {
		return err
	}
	srv, err := control.NewServer(control.ServerConfig{Backend: control.StoreBackend(st), Keys: keys, RDMA: responder, Log: log})
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	info := subhostInfo{Listen: l.Addr().String(), StateDir: stateDir, PSKFile: pskFile, RDMA: responder != nil}
	if metricsAddr != "" {
		bound, stop, err := serveMetrics(metricsAddr, subhostMetrics(srv))
		if err != nil {
			l.Close()
			return err
		}
		defer stop()
		info.Metrics = bound
	}
	if jsonOutput {
		_ = json.NewEncoder(os.Stdout).Encode(info)
	} else {
		transport := "tcp"
		if info.RDMA {
			transport = "rdma+tcp"
		}
		fmt.Printf("subhost listening on %s (state %s, keys %s, %s)\n", info.Listen, stateDir, pskFile, transport)
		if info.Metrics != "" {
			fmt.Printf("metrics at http://%s/metrics\n", info.Metrics)
		}
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info().Msg("subhost: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Warn().Err(err).Msg("subhost: connections closed abruptly")
	}
	if err := <-served; err != nil && !errors.Is(err, control.ErrServerClosed) {
		return err
	}
	return nil
}

// reportCorruptRegions logs, at start-up, every region a client could not
// open, so an operator learns of it before a main host does.
func reportCorruptRegions(st *store.Store) {
	bad, err := st.Check()
	if err != nil {
		log.Warn().Err(err).Msg("subhost: region check failed")
		return
	}
	for _, h := range bad {
		log.Error().Str("vm", h.VM).Err(h.Err).Msg("subhost: corrupt region (not served; see `vmemtrans subhost regions`)")
	}
}
