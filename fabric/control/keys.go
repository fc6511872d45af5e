package control

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/vmemtrans/vmemtrans/fabric/store"
)

var (
	// ErrKeyFile reports a malformed pre-shared key file.
	ErrKeyFile = errors.New("bad key file")
	// ErrKeyFileMode reports a key file that others than its owner may read.
	ErrKeyFileMode = errors.New("key file permissions too open")
)

// MinKeySize is the shortest pre-shared key accepted, in bytes.
const MinKeySize = 16

// KeySize is the size of the keys AddKey makes.
const KeySize = 32

// AnyVM is the key-file VM id whose key serves every VM without its own line.
// It defeats per-VM isolation, so nothing writes it unless asked to.
const AnyVM = "*"

const keyFileHeader = "# vmemtrans pre-shared keys: VMID HEXKEY, one per VM (\"*\" = any vm, only if asked for)\n"

// ValidVMID reports whether id is a well-formed VM id: store.ValidVMID's
// rule, since an id names the sub-host's directory for that VM.
func ValidVMID(id string) bool { return store.ValidVMID(id) == nil }

// Keyring maps VM ids to pre-shared keys.
//
// Its text form has one "VMID HEXKEY" pair per line; "#" starts a comment and
// the VM id "*" gives the key of every VM without a line of its own.
//
// A keyring loaded from a file follows the file: each lookup re-reads it when
// it changed, so keys added or removed while a sub-host runs take effect at
// the next connection. A file that turns bad (malformed, too open) grants no
// key until it is fixed.
type Keyring struct {
	mu   sync.Mutex
	keys map[string][]byte
	path string      // "" for a keyring built in memory
	seen os.FileInfo // the file version keys came from
	err  error       // why the file currently grants nothing
}

// NewKeyring returns a keyring holding copies of the given keys.
func NewKeyring(keys map[string][]byte) (*Keyring, error) {
	k := &Keyring{keys: make(map[string][]byte, len(keys))}
	for vm, key := range keys {
		if err := addKey(k.keys, vm, key); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func addKey(keys map[string][]byte, vm string, key []byte) error {
	if vm != AnyVM && !ValidVMID(vm) {
		return fmt.Errorf("vm id %q: %w", vm, ErrKeyFile)
	}
	if len(key) < MinKeySize {
		return fmt.Errorf("key of vm %q: %d bytes, need %d: %w", vm, len(key), MinKeySize, ErrKeyFile)
	}
	if _, dup := keys[vm]; dup {
		return fmt.Errorf("vm %q listed twice: %w", vm, ErrKeyFile)
	}
	keys[vm] = bytes.Clone(key)
	return nil
}

// Key returns the key for vm, falling back to the "*" key.
func (k *Keyring) Key(vm string) ([]byte, bool) {
	if k == nil || !ValidVMID(vm) {
		return nil, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshLocked()
	if key, ok := k.keys[vm]; ok {
		return key, true
	}
	key, ok := k.keys[AnyVM]
	return key, ok
}

// VMs lists the VM ids that have a key ("*" included), sorted.
func (k *Keyring) VMs() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshLocked()
	vms := make([]string, 0, len(k.keys))
	for vm := range k.keys {
		vms = append(vms, vm)
	}
	sort.Strings(vms)
	return vms
}

// Err tells why a file-backed keyring currently grants no key (nil if it does).
func (k *Keyring) Err() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.refreshLocked()
	return k.err
}

// refreshLocked re-reads the key file when it is not the version last read.
func (k *Keyring) refreshLocked() {
	if k.path == "" {
		return
	}
	fi, err := os.Stat(k.path)
	if err == nil && k.seen != nil && os.SameFile(fi, k.seen) && fi.ModTime().Equal(k.seen.ModTime()) && fi.Size() == k.seen.Size() && fi.Mode() == k.seen.Mode() {
		return
	}
	keys, fi, err := readKeyFile(k.path)
	k.seen = fi
	if err != nil {
		k.keys, k.err = map[string][]byte{}, err
		return
	}
	k.keys, k.err = keys, nil
}

// ParseKeyring decodes the text form of a keyring; it must hold a key.
func ParseKeyring(text []byte) (*Keyring, error) {
	keys, err := parseKeys(text)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("no keys: %w", ErrKeyFile)
	}
	return &Keyring{keys: keys}, nil
}

func parseKeys(text []byte) (map[string][]byte, error) {
	keys := map[string][]byte{}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 2 {
			return nil, fmt.Errorf("line %d: want \"VMID HEXKEY\": %w", n, ErrKeyFile)
		}
		key, err := hex.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d: key is not hex: %w", n, ErrKeyFile)
		}
		if err := addKey(keys, f[0], key); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file: %v: %w", err, ErrKeyFile)
	}
	return keys, nil
}

// checkKeyFileMode applies ssh's rule: a private key file readable or
// writable by group or others is refused.
func checkKeyFileMode(path string, fi os.FileInfo) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("key file %s has mode %04o, open to group or others: run `chmod 600 %s`: %w", path, perm, path, ErrKeyFileMode)
	}
	return nil
}

func readKeyFile(path string) (map[string][]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("key file: %w", err)
	}
	if err := checkKeyFileMode(path, fi); err != nil {
		return nil, fi, err
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(f); err != nil {
		return nil, fi, fmt.Errorf("key file %s: %w", path, err)
	}
	keys, err := parseKeys(buf.Bytes())
	if err != nil {
		return nil, fi, fmt.Errorf("key file %s: %w", path, err)
	}
	return keys, fi, nil
}

// LoadKeyring reads a key file (which may list no VM yet) and follows its
// changes. A file open to group or others is refused (ErrKeyFileMode).
func LoadKeyring(path string) (*Keyring, error) {
	keys, fi, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return &Keyring{keys: keys, path: path, seen: fi}, nil
}

// EnsureKeyFile loads path, or creates it (mode 0600) holding no key when it
// does not exist: each VM gets its own key with AddKey. created tells which
// happened.
func EnsureKeyFile(path string) (k *Keyring, created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		k, err := LoadKeyring(path)
		return k, false, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("key file: %w", err)
	}
	if _, err := f.WriteString(keyFileHeader); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err = LoadKeyring(path)
	return k, true, err
}

// AddKey gives vm ("*" for any VM) a new random key in the key file at path,
// creating the file if needed, and returns the key. A VM that already has a
// key keeps it: remove it first to rotate.
func AddKey(path, vm string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("key for vm %q: %w", vm, err)
	}
	err := editKeyFile(path, func(keys map[string][]byte) error {
		if _, ok := keys[vm]; ok {
			return fmt.Errorf("vm %q already has a key in %s (remove it first to rotate): %w", vm, path, ErrKeyFile)
		}
		return addKey(keys, vm, key)
	})
	if err != nil {
		return nil, err
	}
	return key, nil
}

// RemoveKey deletes vm's key from the key file at path.
func RemoveKey(path, vm string) error {
	return editKeyFile(path, func(keys map[string][]byte) error {
		if _, ok := keys[vm]; !ok {
			return fmt.Errorf("vm %q has no key in %s: %w", vm, path, ErrKeyFile)
		}
		delete(keys, vm)
		return nil
	})
}

// editKeyFile rewrites the key file through edit, atomically (a temporary
// file renamed over it), so a running sub-host never reads half a file.
func editKeyFile(path string, edit func(map[string][]byte) error) error {
	keys := map[string][]byte{}
	if _, err := os.Stat(path); err == nil {
		if keys, _, err = readKeyFile(path); err != nil {
			return err
		}
	}
	if err := edit(keys); err != nil {
		return err
	}
	vms := make([]string, 0, len(keys))
	for vm := range keys {
		vms = append(vms, vm)
	}
	sort.Strings(vms)
	var b strings.Builder
	b.WriteString(keyFileHeader)
	for _, vm := range vms {
		fmt.Fprintf(&b, "%s %s\n", vm, hex.EncodeToString(keys[vm]))
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".new")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file %s: %w (another edit running?)", path, err)
	}
	_, werr := f.WriteString(b.String())
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("key file %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return nil
}
