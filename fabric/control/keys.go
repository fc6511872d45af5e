package control

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// ErrKeyFile reports a malformed pre-shared key file.
var ErrKeyFile = errors.New("bad key file")

// MinKeySize is the shortest pre-shared key accepted, in bytes.
const MinKeySize = 16

// AnyVM is the key-file VM id whose key serves every VM without its own line.
const AnyVM = "*"

var vmIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// ValidVMID reports whether id is a well-formed VM id.
func ValidVMID(id string) bool { return vmIDPattern.MatchString(id) }

// Keyring maps VM ids to pre-shared keys.
//
// Its text form has one "VMID HEXKEY" pair per line; "#" starts a comment and
// the VM id "*" gives the key of every VM without a line of its own.
type Keyring struct {
	keys map[string][]byte
}

// NewKeyring returns a keyring holding copies of the given keys.
func NewKeyring(keys map[string][]byte) (*Keyring, error) {
	k := &Keyring{keys: make(map[string][]byte, len(keys))}
	for vm, key := range keys {
		if err := k.add(vm, key); err != nil {
			return nil, err
		}
	}
	return k, nil
}

func (k *Keyring) add(vm string, key []byte) error {
	if vm != AnyVM && !ValidVMID(vm) {
		return fmt.Errorf("vm id %q: %w", vm, ErrKeyFile)
	}
	if len(key) < MinKeySize {
		return fmt.Errorf("key of vm %q: %d bytes, need %d: %w", vm, len(key), MinKeySize, ErrKeyFile)
	}
	if _, dup := k.keys[vm]; dup {
		return fmt.Errorf("vm %q listed twice: %w", vm, ErrKeyFile)
	}
	k.keys[vm] = bytes.Clone(key)
	return nil
}

// Key returns the key for vm, falling back to the "*" key.
func (k *Keyring) Key(vm string) ([]byte, bool) {
	if k == nil || !ValidVMID(vm) {
		return nil, false
	}
	if key, ok := k.keys[vm]; ok {
		return key, true
	}
	key, ok := k.keys[AnyVM]
	return key, ok
}

// ParseKeyring decodes the text form of a keyring.
func ParseKeyring(text []byte) (*Keyring, error) {
	k := &Keyring{keys: map[string][]byte{}}
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
		if err := k.add(f[0], key); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("key file: %v: %w", err, ErrKeyFile)
	}
	if len(k.keys) == 0 {
		return nil, fmt.Errorf("no keys: %w", ErrKeyFile)
	}
	return k, nil
}

// LoadKeyring reads a key file.
func LoadKeyring(path string) (*Keyring, error) {
	text, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("key file: %w", err)
	}
	k, err := ParseKeyring(text)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// EnsureKeyFile loads path, or creates it (mode 0600) with one random key for
// every VM when it does not exist. created tells which happened.
func EnsureKeyFile(path string) (k *Keyring, created bool, err error) {
	if _, err := os.Stat(path); err == nil {
		k, err := LoadKeyring(path)
		return k, false, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	text := fmt.Sprintf("# vmemtrans pre-shared keys: VMID HEXKEY (\"*\" = any vm)\n%s %s\n", AnyVM, hex.EncodeToString(key))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("key file: %w", err)
	}
	if _, err := f.WriteString(text); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("key file %s: %w", path, err)
	}
	k, err = ParseKeyring([]byte(text))
	return k, true, err
}
