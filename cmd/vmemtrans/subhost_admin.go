package main

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/vmemtrans/vmemtrans/fabric/control"
	"github.com/vmemtrans/vmemtrans/fabric/store"
)

// adminFlags locate a sub-host's state: its directory and key file.
type adminFlags struct {
	stateDir, pskFile string
}

func (a *adminFlags) register(cmd *cobra.Command, needPSK bool) {
	f := cmd.Flags()
	f.StringVar(&a.stateDir, "state-dir", "", "the sub-host's state directory")
	if needPSK {
		f.StringVar(&a.pskFile, "psk-file", "", "pre-shared key file (default STATE-DIR/psk)")
	}
}

func (a *adminFlags) keyFile() (string, error) {
	switch {
	case a.pskFile != "":
		return a.pskFile, nil
	case a.stateDir != "":
		return filepath.Join(a.stateDir, "psk"), nil
	}
	return "", errors.New("give --state-dir (or --psk-file)")
}

func subhostKeysCmd() *cobra.Command {
	keys := &cobra.Command{
		Use:   "keys",
		Short: "Provision per-VM pre-shared keys of a sub-host (add, list, remove)",
		Long: `Each VM has its own key: a main host holding VM A's key can open VM A's
region only. Changes apply to a running sub-host at the next connection.`,
	}
	var a adminFlags
	var anyVM bool
	add := &cobra.Command{
		Use:   "add VMID",
		Short: "Give VMID a new random key and print it (hex) for the main host",
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vm, err := keyTarget(args, anyVM)
			if err != nil {
				return err
			}
			path, err := a.keyFile()
			if err != nil {
				return err
			}
			if a.stateDir != "" {
				if err := ensureStateDir(a.stateDir); err != nil {
					return err
				}
			}
			key, err := control.AddKey(path, vm)
			if err != nil {
				return err
			}
			if jsonOutput {
				return json.NewEncoder(os.Stdout).Encode(map[string]string{"vm": vm, "key": hex.EncodeToString(key), "psk_file": path})
			}
			fmt.Println(hex.EncodeToString(key))
			return nil
		},
	}
	a.register(add, true)
	add.Flags().BoolVar(&anyVM, "any-vm", false, `add the "*" key, valid for every VM (no per-VM isolation)`)
	list := &cobra.Command{
		Use:   "list",
		Short: "List the VM ids that have a key (not the keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := a.keyFile()
			if err != nil {
				return err
			}
			k, err := control.LoadKeyring(path)
			if err != nil {
				return err
			}
			vms := k.VMs()
			if jsonOutput {
				return json.NewEncoder(os.Stdout).Encode(vms)
			}
			for _, vm := range vms {
				fmt.Println(vm)
			}
			return nil
		},
	}
	a.register(list, true)
	var anyRemove bool
	remove := &cobra.Command{
		Use:   "remove VMID",
		Short: "Revoke VMID's key (new connections for it are refused)",
		Args:  cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			vm, err := keyTarget(args, anyRemove)
			if err != nil {
				return err
			}
			path, err := a.keyFile()
			if err != nil {
				return err
			}
			return control.RemoveKey(path, vm)
		},
	}
	a.register(remove, true)
	remove.Flags().BoolVar(&anyRemove, "any-vm", false, `remove the "*" key`)
	keys.AddCommand(add, list, remove)
	return keys
}

// keyTarget is the key-file id a keys command acts on.
func keyTarget(args []string, anyVM bool) (string, error) {
	switch {
	case anyVM && len(args) == 0:
		return control.AnyVM, nil
	case !anyVM && len(args) == 1 && control.ValidVMID(args[0]):
		return args[0], nil
	case !anyVM && len(args) == 1:
		return "", fmt.Errorf("vm id %q: want letters, digits, '.', '_' or '-', at most 64", args[0])
	}
	return "", errors.New("give one VMID, or --any-vm alone")
}

// regionInfo is one line of `subhost regions`.
type regionInfo struct {
	VM            string `json:"vm"`
	Slots         uint64 `json:"slots"`
	SizeBytes     uint64 `json:"size_bytes"`
	ResidentBytes uint64 `json:"resident_bytes"`
	Health        string `json:"health"`
	Error         string `json:"error,omitempty"`
}

func subhostRegionsCmd() *cobra.Command {
	var a adminFlags
	regions := &cobra.Command{
		Use:   "regions",
		Short: "List a sub-host's regions: size, disk use, health (safe while it runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.stateDir == "" {
				return errors.New("give --state-dir")
			}
			all, err := store.Inspect(a.stateDir)
			if err != nil {
				return err
			}
			out := make([]regionInfo, 0, len(all))
			for _, h := range all {
				ri := regionInfo{VM: h.VM, Slots: h.Slots, SizeBytes: h.Slots * 4096, ResidentBytes: h.ResidentBytes, Health: "ok"}
				if h.Err != nil {
					ri.Health, ri.Error = "corrupt", h.Err.Error()
				}
				out = append(out, ri)
			}
			if jsonOutput {
				return json.NewEncoder(os.Stdout).Encode(out)
			}
			w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "VM\tSLOTS\tSIZE\tON DISK\tHEALTH")
			for _, r := range out {
				fmt.Fprintf(w, "%s\t%d\t%s\t%s\t%s\n", r.VM, r.Slots, humanBytes(r.SizeBytes), humanBytes(r.ResidentBytes), r.Health)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, r := range out {
				if r.Error != "" {
					fmt.Fprintf(os.Stderr, "%s: %s\n", r.VM, r.Error)
				}
			}
			return nil
		},
	}
	a.register(regions, false)
	var ra adminFlags
	remove := &cobra.Command{
		Use:   "remove VMID",
		Short: "Delete VMID's region and every page in it (the sub-host must be stopped)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ra.stateDir == "" {
				return errors.New("give --state-dir")
			}
			st, err := store.Open(ra.stateDir)
			if errors.Is(err, store.ErrLocked) {
				return fmt.Errorf("%w: stop the sub-host serving %s first", err, ra.stateDir)
			}
			if err != nil {
				return err
			}
			defer st.Close()
			return st.Remove(args[0])
		},
	}
	ra.register(remove, false)
	regions.AddCommand(remove)
	return regions
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// ensureStateDir creates dir (0700), or tightens an existing one that group
// or others may enter: it holds the key file and every VM's pages.
func ensureStateDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("state dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(dir, perm&0o700); err != nil {
			return fmt.Errorf("state dir %s has mode %04o, open to group or others, and could not be tightened (run `chmod 700 %s`): %w", dir, perm, dir, err)
		}
		log.Warn().Str("dir", dir).Str("was", fmt.Sprintf("%04o", perm)).Msg("subhost: state dir was open to group or others; tightened to owner only")
	}
	return nil
}
