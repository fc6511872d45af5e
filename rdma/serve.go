package rdma

import (
	"fmt"

	"github.com/rs/zerolog"

	"github.com/vmemtrans/vmemtrans/fabric/control"
)

// ResponderFor is the sub-host's side of DialAuto's policy: the responder
// for --rdma mode "auto", "off" or a device name, or nil to serve TCP only.
// "off" serves TCP only; "auto" serves RDMA on the first usable device and
// TCP only (saying why in the log) when this build, this host or the device
// cannot; a named device that is missing or fails to open is an error. The
// result is a nil interface, not a nil *Responder, when TCP only is served.
func ResponderFor(mode string, log zerolog.Logger) (control.RDMAResponder, error) {
	devs, err := Discover()
	if err != nil && mode != "off" {
		log.Warn().Err(err).Msg("rdma discovery failed")
	}
	c, err := Choose(mode, devs, Built)
	if err != nil {
		return nil, err
	}
	if c.Transport != KindRDMA {
		log.Info().Str("reason", c.Reason).Msg("sub-host: serving TCP only")
		return nil, nil
	}
	r, err := NewResponder(c.Device)
	if err != nil {
		if mode == "auto" || mode == "" {
			log.Info().Err(err).Str("device", c.Device).Msg("sub-host: RDMA device unusable; serving TCP only")
			return nil, nil
		}
		return nil, fmt.Errorf("rdma %s: %w", mode, err)
	}
	log.Info().Str("device", c.Device).Int("port", c.Port).Str("gid", c.GID).Str("netdev", c.Netdev).
		Str("reason", c.Reason).Msg("sub-host: serving RDMA")
	return r, nil
}
