package render

import (
	"bytes"
	"os"
	"reflect"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// The fixtures in testdata/sops were encrypted by sops 3.13.3 (built from
// the Go module proxy) for the test key test.agekey: secret.enc.yaml with
// Flux's encrypted_regex ^(data|stringData)$, mixed.enc.yaml with every
// value encrypted but a _unencrypted one (ints, floats, booleans, a list,
// a null, a comment), secret-maconly.enc.yaml with mac_only_encrypted,
// other-key.enc.yaml for another key. *.plain.yaml are the inputs.

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../testdata/sops/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testDecryptor(t *testing.T) *Decryptor {
	t.Helper()
	d, err := LoadAgeKeys("../testdata/sops/test.agekey")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func yamlMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

// TestSOPSDecrypt: real sops output decrypts to exactly its input, values'
// types kept.
func TestSOPSDecrypt(t *testing.T) {
	d := testDecryptor(t)
	for enc, plain := range map[string]string{
		"secret.enc.yaml":         "secret.plain.yaml",
		"secret-maconly.enc.yaml": "secret.plain.yaml",
		"mixed.enc.yaml":          "mixed.plain.yaml",
	} {
		t.Run(enc, func(t *testing.T) {
			if !IsSOPS(fixture(t, enc)) || IsSOPS(fixture(t, plain)) {
				t.Fatal("IsSOPS does not tell the encrypted file from the plain one")
			}
			out, err := d.Decrypt(fixture(t, enc))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := yamlMap(t, out), yamlMap(t, fixture(t, plain)); !reflect.DeepEqual(got, want) {
				t.Errorf("decrypted:\n%v\nwant:\n%v", got, want)
			}
			if bytes.Contains(out, []byte("ENC[")) || bytes.Contains(out, []byte("sops:")) {
				t.Errorf("ciphertext or metadata left in the output:\n%s", out)
			}
		})
	}
}

// TestSOPSRefusals: the wrong key, no key, and every tampering with an
// encrypted file fail, naming why and never a plaintext value.
func TestSOPSRefusals(t *testing.T) {
	d := testDecryptor(t)
	secret, mixed := string(fixture(t, "secret.enc.yaml")), string(fixture(t, "mixed.enc.yaml"))
	line := func(s, key string) string { // the line of key in s
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), key+":") {
				return l
			}
		}
		t.Fatalf("no %s in the fixture", key)
		return ""
	}
	value := func(s, key string) string { return strings.TrimSpace(strings.SplitN(line(s, key), ":", 2)[1]) }
	swapped := strings.Replace(strings.Replace(secret, line(secret, "password"), "    password: "+value(secret, "port"), 1), line(secret, "port"), "    port: "+value(secret, "password"), 1)
	for _, c := range []struct {
		name string
		d    *Decryptor
		data string
		want string
	}{
		{"another key", d, string(fixture(t, "other-key.enc.yaml")), "none of the age keys given is one of them"},
		{"no key", &Decryptor{}, secret, "no age key was given"},
		{"an unencrypted value changed", d, strings.Replace(mixed, "left as is", "changed", 1), "the MAC does not match"},
		{"a value removed", d, strings.Replace(secret, line(secret, "port")+"\n", "", 1), "the MAC does not match"},
		{"a value moved to another key", d, swapped, "stringData.password: the value does not open"},
		{"the MAC removed", d, strings.Replace(secret, line(secret, "mac"), "    mac: \"\"", 1), "the MAC does not match"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.d.Decrypt([]byte(c.data))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			for _, secretValue := range []string{"s3cr3t-value", "5432", "token-value"} {
				if strings.Contains(err.Error(), secretValue) {
					t.Errorf("the error shows a secret: %v", err)
				}
			}
		})
	}
}

// TestSOPSInARelease: an encrypted Secret in a release's kustomization is
// decrypted as the render reads it; without the key the release is
// refused naming the file; sluice render masks the values.
func TestSOPSInARelease(t *testing.T) {
	files := appRepo(map[string]string{
		"releases/shop/app/kustomization.yaml": "resources: [deployment.yaml, service.yaml, route.yaml, config.yaml, other.yaml, db.sops.yaml]\nnamespace: shop\n",
		"releases/shop/app/db.sops.yaml":       string(fixture(t, "secret.enc.yaml")),
	})
	dir := repo(t, files)
	r := Renderer{Decryptor: testDecryptor(t)}
	res, err := load(t, &r, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, o := range res.Objects {
		if o.GetKind() == "Secret" {
			found = true
			if pw := o.Object["stringData"].(map[string]any)["password"]; pw != "s3cr3t-value" {
				t.Errorf("password = %v", pw)
			}
			if o.GetNamespace() != "shop" || o.Object["sops"] != nil {
				t.Errorf("the Secret as rendered: %v", o.Object)
			}
		}
	}
	if !found {
		t.Fatal("no Secret in the render")
	}
	masked, err := res.MaskedYAML()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(masked, []byte("s3cr3t-value")) || bytes.Contains(masked, []byte("dG9rZW4tdmFsdWU=")) || !bytes.Contains(masked, []byte("password: '***'")) {
		t.Errorf("masked render:\n%s", masked)
	}
	var none Renderer
	if _, err := load(t, &none, dir, ""); err == nil || !strings.Contains(err.Error(), "releases/shop/app/db.sops.yaml: encrypted with SOPS for age1") {
		t.Fatalf("without a key: %v", err)
	}
}

// FuzzSOPSDecrypt: no file, however broken (the repository is written by
// many people), panics the decryption.
func FuzzSOPSDecrypt(f *testing.F) {
	for _, name := range []string{"secret.enc.yaml", "mixed.enc.yaml", "secret-maconly.enc.yaml"} {
		b, err := os.ReadFile("../testdata/sops/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	d, err := LoadAgeKeys("../testdata/sops/test.agekey")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = d.Decrypt(data)
	})
}
