package render

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"filippo.io/age/armor"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/yaml"
	sigsyaml "sigs.k8s.io/yaml"
)

// SOPS: files encrypted with sops (getsops/sops) and an age key are
// decrypted as the render reads them, with filippo.io/age and the SOPS
// file format (AES-256-GCM per value, the path of keys as additional
// data, a SHA-512 MAC over the values), not the sops library, which would
// bring every cloud's KMS client into the agent. Only age recipients and
// YAML files are supported.

// Decryptor holds the age identities SOPS files are decrypted with.
type Decryptor struct {
	identities []age.Identity
}

// LoadAgeKeys reads age identities (AGE-SECRET-KEY-1... lines, as
// age-keygen writes them and SOPS_AGE_KEY_FILE holds) from files.
func LoadAgeKeys(files ...string) (*Decryptor, error) {
	d := &Decryptor{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("age key: %w", err)
		}
		ids, err := age.ParseIdentities(bytes.NewReader(data))
		if err != nil {
			// age's message never quotes the key material.
			return nil, fmt.Errorf("age key %s: %v", f, err)
		}
		d.identities = append(d.identities, ids...)
	}
	return d, nil
}

// sopsMarker finds a top-level sops: key, the mark of an encrypted file.
var sopsMarker = regexp.MustCompile(`(?m)^sops:\s*$`)

// IsSOPS reports whether a YAML file is SOPS-encrypted.
func IsSOPS(data []byte) bool {
	return sopsMarker.Match(data) && bytes.Contains(data, []byte("ENC[AES256_GCM,"))
}

// sopsMetadata is the sops: key of an encrypted file.
type sopsMetadata struct {
	Age []struct {
		Recipient string `yaml:"recipient"`
		Enc       string `yaml:"enc"`
	} `yaml:"age"`
	KeyGroups               []any  `yaml:"key_groups"`
	LastModified            string `yaml:"lastmodified"`
	MAC                     string `yaml:"mac"`
	UnencryptedSuffix       string `yaml:"unencrypted_suffix"`
	EncryptedSuffix         string `yaml:"encrypted_suffix"`
	UnencryptedRegex        string `yaml:"unencrypted_regex"`
	EncryptedRegex          string `yaml:"encrypted_regex"`
	UnencryptedCommentRegex string `yaml:"unencrypted_comment_regex"`
	EncryptedCommentRegex   string `yaml:"encrypted_comment_regex"`
	MACOnlyEncrypted        bool   `yaml:"mac_only_encrypted"`
}

// macOnlyEncryptedInit starts the MAC of files with mac_only_encrypted
// (sops' MACOnlyEncryptedInitialization).
var macOnlyEncryptedInit = []byte{0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0xb, 0xb, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69}

// Decrypt returns the plaintext YAML of a SOPS-encrypted file, its sops:
// key removed, after checking the file's MAC: a value changed, added or
// removed without the key is refused. Errors never hold a decrypted value.
func (d *Decryptor) Decrypt(data []byte) ([]byte, error) {
	var docs []*yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		docs = append(docs, &doc)
	}
	meta, err := takeMetadata(docs)
	if err != nil {
		return nil, err
	}
	key, err := d.dataKey(meta)
	if err != nil {
		return nil, err
	}
	w := &sopsWalk{meta: meta, key: key, mac: sha512.New()}
	if meta.MACOnlyEncrypted {
		w.mac.Write(macOnlyEncryptedInit)
	}
	for _, doc := range docs {
		if err := w.walk(doc, nil); err != nil {
			return nil, err
		}
	}
	last, err := time.Parse(time.RFC3339, meta.LastModified)
	if err != nil {
		return nil, fmt.Errorf("sops.lastmodified: %v", err)
	}
	want, _, err := decryptTyped(meta.MAC, key, last.Format(time.RFC3339))
	if err != nil {
		return nil, fmt.Errorf("sops.mac: %v", err)
	}
	if got := fmt.Sprintf("%X", w.mac.Sum(nil)); want != got {
		return nil, errors.New("the MAC does not match the values: the file was changed without its key")
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	for _, doc := range docs {
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// takeMetadata removes the top-level sops: key from the documents and
// returns it.
func takeMetadata(docs []*yaml.Node) (*sopsMetadata, error) {
	for _, doc := range docs {
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if m.Content[i].Value != "sops" {
				continue
			}
			var meta sopsMetadata
			if err := m.Content[i+1].Decode(&meta); err != nil {
				return nil, fmt.Errorf("sops: %v", err)
			}
			m.Content = append(m.Content[:i], m.Content[i+2:]...)
			switch {
			case len(meta.KeyGroups) > 0:
				return nil, errors.New("sops.key_groups: key groups (Shamir secret sharing) are not supported; encrypt to age recipients")
			case meta.UnencryptedCommentRegex != "" || meta.EncryptedCommentRegex != "":
				return nil, errors.New("sops: encrypted_comment_regex and unencrypted_comment_regex are not supported")
			case len(meta.Age) == 0:
				return nil, errors.New("sops.age: the file is encrypted to no age recipient (only age is supported)")
			}
			return &meta, nil
		}
	}
	return nil, errors.New("no sops: key")
}

// dataKey decrypts the file's data key with the first identity that can.
func (d *Decryptor) dataKey(meta *sopsMetadata) ([]byte, error) {
	var recipients []string
	for _, a := range meta.Age {
		recipients = append(recipients, a.Recipient)
		if len(d.identities) == 0 {
			continue
		}
		r, err := age.Decrypt(armor.NewReader(strings.NewReader(a.Enc)), d.identities...)
		if err != nil {
			continue
		}
		key, err := io.ReadAll(io.LimitReader(r, 64))
		if err == nil && len(key) == 32 {
			return key, nil
		}
	}
	if len(d.identities) == 0 {
		return nil, fmt.Errorf("encrypted with SOPS for %s, and no age key was given (the agent's --sops-age-key-file, SOPS_AGE_KEY_FILE for the CLI)", strings.Join(recipients, ", "))
	}
	return nil, fmt.Errorf("encrypted with SOPS for %s: none of the age keys given is one of them", strings.Join(recipients, ", "))
}

// sopsWalk decrypts a document's values in place, in sops' order, and
// feeds the MAC.
type sopsWalk struct {
	meta *sopsMetadata
	key  []byte
	mac  hash.Hash
}

func (w *sopsWalk) walk(n *yaml.Node, path []string) error {
	n.HeadComment, n.LineComment, n.FootComment = "", "", "" // encrypted by sops; not carried over
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		// Items of a list share their list's path.
		for _, c := range n.Content {
			if err := w.walk(c, path); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			k.HeadComment, k.LineComment, k.FootComment = "", "", ""
			if err := w.walk(n.Content[i+1], append(path[:len(path):len(path)], k.Value)); err != nil {
				return err
			}
		}
	case yaml.AliasNode:
		return fmt.Errorf("%s: YAML aliases are not supported in encrypted files", strings.Join(path, "."))
	case yaml.ScalarNode:
		return w.leaf(n, path)
	}
	return nil
}

func (w *sopsWalk) leaf(n *yaml.Node, path []string) error {
	var v any
	if err := n.Decode(&v); err != nil {
		return err
	}
	if v == nil {
		return nil // sops leaves nulls out, of the MAC too
	}
	encrypted := w.encrypted(path)
	if encrypted {
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: not encrypted, though the file's rules say it is", strings.Join(path, "."))
		}
		plain, typ, err := decryptTyped(s, w.key, strings.Join(path, ":")+":")
		if err != nil {
			return fmt.Errorf("%s: %v", strings.Join(path, "."), err)
		}
		n.Value, n.Tag, n.Style = plain, typ, 0
		if typ == "!!str" {
			n.Style = yaml.DoubleQuotedStyle // a string stays one, whatever it looks like
		}
		w.mac.Write([]byte(macBytes(plain, typ)))
		return nil
	}
	if !w.meta.MACOnlyEncrypted {
		b, err := plainMACBytes(v)
		if err != nil {
			return fmt.Errorf("%s: %v", strings.Join(path, "."), err)
		}
		w.mac.Write(b)
	}
	return nil
}

// encrypted is sops' shouldBeEncrypted for the suffix and regex rules.
func (w *sopsWalk) encrypted(path []string) bool {
	m := w.meta
	some := func(match func(string) bool) bool {
		for _, p := range path {
			if match(p) {
				return true
			}
		}
		return false
	}
	enc := true
	if m.UnencryptedSuffix != "" && some(func(p string) bool { return strings.HasSuffix(p, m.UnencryptedSuffix) }) {
		enc = false
	}
	if m.EncryptedSuffix != "" {
		enc = some(func(p string) bool { return strings.HasSuffix(p, m.EncryptedSuffix) })
	}
	if m.UnencryptedRegex != "" && some(func(p string) bool { ok, _ := regexp.MatchString(m.UnencryptedRegex, p); return ok }) {
		enc = false
	}
	if m.EncryptedRegex != "" {
		enc = some(func(p string) bool { ok, _ := regexp.MatchString(m.EncryptedRegex, p); return ok })
	}
	return enc
}

var encValue = regexp.MustCompile(`^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]`)

// decryptTyped opens one ENC[...] value; it returns the plaintext and the
// YAML tag of its sops type.
func decryptTyped(value string, key []byte, aad string) (string, string, error) {
	if value == "" {
		return "", "!!str", nil
	}
	m := encValue.FindStringSubmatch(value)
	if m == nil {
		return "", "", errors.New("not a SOPS encrypted value")
	}
	var parts [3][]byte
	for i := range parts {
		b, err := base64.StdEncoding.DecodeString(m[i+1])
		if err != nil {
			return "", "", fmt.Errorf("bad base64 in the encrypted value: %v", err)
		}
		parts[i] = b
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return "", "", err
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, len(parts[1]))
	if err != nil {
		return "", "", err
	}
	plain, err := gcm.Open(nil, parts[1], append(parts[0], parts[2]...), []byte(aad))
	if err != nil {
		return "", "", errors.New("the value does not open with the file's key (changed, or moved to another key)")
	}
	tags := map[string]string{"str": "!!str", "int": "!!int", "float": "!!float", "bool": "!!bool", "time": "!!timestamp", "bytes": "!!str"}
	tag, ok := tags[m[4]]
	if !ok {
		return "", "", fmt.Errorf("unknown SOPS value type %q", m[4])
	}
	return string(plain), tag, nil
}

// macBytes is what sops hashes for a decrypted value: ToBytes of the
// value decoded as its type (so 1e3 as a float hashes as 1000, a boolean
// as Python wrote it).
func macBytes(plain, tag string) string {
	var v any = plain
	switch tag {
	case "!!int":
		if i, err := strconv.Atoi(plain); err == nil {
			v = i
		}
	case "!!float":
		if f, err := strconv.ParseFloat(plain, 64); err == nil {
			v = f
		}
	case "!!bool":
		if b, err := strconv.ParseBool(plain); err == nil {
			v = b
		}
	case "!!timestamp":
		var t time.Time
		if err := t.UnmarshalText([]byte(plain)); err == nil {
			v = t
		}
	}
	b, err := plainMACBytes(v)
	if err != nil {
		return plain
	}
	return string(b)
}

// plainMACBytes is sops' ToBytes for a value left unencrypted.
func plainMACBytes(v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return []byte(v), nil
	case int:
		return []byte(strconv.Itoa(v)), nil
	case float64:
		return []byte(strconv.FormatFloat(v, 'f', -1, 64)), nil
	case bool:
		if v {
			return []byte("True"), nil
		}
		return []byte("False"), nil
	case time.Time:
		return v.MarshalText()
	}
	return nil, fmt.Errorf("a value of type %T, which SOPS does not hash", v)
}

// MaskedYAML is the render as YAML with every Secret's data and
// stringData values replaced by "***": what sluice render prints unless
// asked to show secrets. A render with no Secret is its YAML as built.
func (r *Result) MaskedYAML() ([]byte, error) {
	if !slices.ContainsFunc(r.Objects, isSecret) {
		return r.YAML, nil
	}
	return maskedYAML(r.Objects)
}

func isSecret(o *unstructured.Unstructured) bool {
	return o.GetKind() == "Secret" && o.GroupVersionKind().Group == ""
}

func maskedYAML(objs []*unstructured.Unstructured) ([]byte, error) {
	var out bytes.Buffer
	for i, o := range objs {
		if isSecret(o) {
			o = o.DeepCopy()
			for _, field := range []string{"data", "stringData"} {
				if m, ok := o.Object[field].(map[string]any); ok {
					for k := range m {
						m[k] = "***"
					}
				}
			}
		}
		b, err := sigsyaml.Marshal(o.Object)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(b)
	}
	return out.Bytes(), nil
}
