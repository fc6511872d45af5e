package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/kvmhost/agent"
)

// DefaultVsockPort is the agent's AF_VSOCK port unless told otherwise.
const DefaultVsockPort = 5210

type options struct {
	vsockPort uint32
	serial    string
	keyFile   string
	logLevel  string
}

func newCommand() *cobra.Command {
	var o options
	cmd := &cobra.Command{
		Use:   "vmemtrans-agent --key-file F [--vsock-port N] [--serial /dev/virtio-ports/NAME]",
		Short: "In-guest agent of self paging: touches guest frames on the IDS's authenticated request",
		Long: `vmemtrans-agent runs as root inside the guest. On an authenticated request from the
IDS on the main host it reads each requested guest frame through /proc/kcore, so
that the VMM pages it in. It listens on AF_VSOCK (--vsock-port, 0 for none)
and/or serves a virtio-serial port (--serial; one stream, reopened when the host
hangs up). If both are asked for and vsock is missing, it serves the port alone.
The key file holds the pre-shared key in hex (mode 0600).`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := zerolog.ParseLevel(o.logLevel)
			if err != nil {
				return fmt.Errorf("--log-level %q: %w", o.logLevel, err)
			}
			console := zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: "15:04:05.000", NoColor: !isatty.IsTerminal(os.Stderr.Fd())}
			log := zerolog.New(console).
				Level(lvl).With().Timestamp().Logger()
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return run(ctx, o, log)
		},
	}
	f := cmd.Flags()
	f.Uint32Var(&o.vsockPort, "vsock-port", DefaultVsockPort, "AF_VSOCK port to listen on (0: no vsock)")
	f.StringVar(&o.serial, "serial", "", "virtio-serial port to serve, e.g. /dev/virtio-ports/org.vmemtrans.agent")
	f.StringVar(&o.keyFile, "key-file", "", "pre-shared key file (hex, mode 0600; required)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	return cmd
}

// run serves until ctx ends or every transport has failed.
func run(ctx context.Context, o options, log zerolog.Logger) error {
	if o.keyFile == "" {
		return errors.New("--key-file is required")
	}
	if o.vsockPort == 0 && o.serial == "" {
		return errors.New("nothing to serve: give --vsock-port and/or --serial")
	}
	key, err := agent.LoadKey(o.keyFile)
	if err != nil {
		return err
	}
	kc, err := agent.OpenKcore()
	if err != nil {
		return err
	}
	defer kc.Close()
	srv, err := agent.NewServer(agent.ServerConfig{Key: key, Toucher: kc, Log: log})
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	serving := 0
	if o.vsockPort != 0 {
		l, err := agent.ListenVsock(o.vsockPort)
		switch {
		case err != nil && o.serial == "":
			return fmt.Errorf("vsock port %d: %w (is the vsock transport loaded in the guest?)", o.vsockPort, err)
		case err != nil:
			log.Warn().Err(err).Uint32("port", o.vsockPort).Msg("agent: no vsock; serving the serial port alone")
		default:
			serving++
			log.Info().Uint32("port", o.vsockPort).Int("ram_ranges", len(kc.RAM())).Msg("agent: listening on vsock")
			wg.Go(func() { errs <- fmt.Errorf("vsock: %w", srv.Serve(l)) })
		}
	}
	if o.serial != "" {
		serving++
		log.Info().Str("port", o.serial).Msg("agent: serving the serial port")
		wg.Go(func() { errs <- fmt.Errorf("serial port: %w", srv.ServeSerial(ctx, o.serial)) })
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
		serving--
		if serving > 0 {
			log.Error().Err(first).Msg("agent: a transport failed; serving the other")
			select {
			case <-ctx.Done():
				first = nil
			case first = <-errs:
			}
		}
	}
	srv.Close()
	wg.Wait()
	if first != nil && !errors.Is(first, agent.ErrServerClosed) && !errors.Is(first, context.Canceled) {
		return first
	}
	st := srv.Stats()
	log.Info().Uint64("connections", st.Connections).Uint64("pages_touched", st.PagesTouched).
		Uint64("auth_failures", st.AuthFailures).Msg("agent: stopped")
	return nil
}

func main() {
	if err := newCommand().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "vmemtrans-agent:", err)
		os.Exit(1)
	}
}
