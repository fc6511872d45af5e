package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/rdma"
)

var devicesRDMA string

var devicesCmd = &cobra.Command{
	Use:   "devices",
	Short: "List RDMA devices, ports, GIDs and netdevs, and the transport a sub-host would offer",
	Args:  cobra.NoArgs,
	RunE: func(cmd *cobra.Command, args []string) error {
		devs, err := rdma.Discover()
		if err != nil {
			return err
		}
		choice, err := rdma.Choose(devicesRDMA, devs, rdma.Built)
		if err != nil {
			return err
		}
		if jsonOutput {
			return printDevicesJSON(os.Stdout, devs, choice)
		}
		return printDevicesTable(os.Stdout, devs, choice)
	},
}

func init() {
	devicesCmd.Flags().StringVar(&devicesRDMA, "rdma", "auto", "what subhost --rdma would be given: auto, off or a device name")
	rootCmd.AddCommand(devicesCmd)
}

type devicesReport struct {
	Devices []rdma.Device `json:"devices"`
	Built   bool          `json:"rdma_built"`
	Offer   rdma.Choice   `json:"offer"`
}

func printDevicesJSON(w io.Writer, devs []rdma.Device, c rdma.Choice) error {
	if devs == nil {
		devs = []rdma.Device{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(devicesReport{Devices: devs, Built: rdma.Built, Offer: c})
}

func printDevicesTable(w io.Writer, devs []rdma.Device, c rdma.Choice) error {
	if len(devs) == 0 {
		fmt.Fprintln(w, "no RDMA devices on this host")
	} else {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DEVICE\tPORT\tSTATE\tMTU\tGID#\tGID\tTYPE\tNETDEV")
		for _, d := range devs {
			if len(d.Ports) == 0 {
				fmt.Fprintf(tw, "%s\t-\t-\t-\t-\t-\t-\t-\n", d.Name)
			}
			for _, p := range d.Ports {
				if len(p.GIDs) == 0 {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t-\t-\t-\t-\n", d.Name, p.Num, p.State, p.ActiveMTU)
				}
				for _, g := range p.GIDs {
					fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\n", d.Name, p.Num, p.State, p.ActiveMTU, g.Index, g.GID, g.Type, g.Netdev)
				}
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	if c.Transport == rdma.KindRDMA {
		_, err := fmt.Fprintf(w, "subhost --listen ADDR would offer: RDMA on %s port %d (GID %d %s on %s), TCP for clients without RDMA; %s\n",
			c.Device, c.Port, c.GIDIndex, c.GID, c.Netdev, c.Reason)
		return err
	}
	_, err := fmt.Fprintf(w, "subhost --listen ADDR would offer: TCP only (%s)\n", c.Reason)
	return err
}
