package gitsource

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"golang.org/x/crypto/ssh"
)

// sshSigner signs commits in Git's SSH signature format (PROTOCOL.sshsig,
// namespace "git"), verifiable with `git verify-commit` and
// gpg.format=ssh.
type sshSigner struct {
	signer ssh.Signer
}

func loadSigner(keyFile, passphraseFile string) (*sshSigner, error) {
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	pass, err := readSecret(passphraseFile)
	if err != nil {
		return nil, err
	}
	var s ssh.Signer
	if pass != "" {
		s, err = ssh.ParsePrivateKeyWithPassphrase(pem, []byte(pass))
	} else {
		s, err = ssh.ParsePrivateKey(pem)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %v", keyFile, redactString(err.Error(), []string{pass}))
	}
	return &sshSigner{signer: s}, nil
}

func sshString(b *bytes.Buffer, s []byte) {
	binary.Write(b, binary.BigEndian, uint32(len(s)))
	b.Write(s)
}

// sign returns the armored SSH signature of message.
func (s *sshSigner) sign(message []byte) (string, error) {
	const namespace, hashAlg = "git", "sha512"
	h := sha512.Sum512(message)
	var signed bytes.Buffer
	signed.WriteString("SSHSIG")
	sshString(&signed, []byte(namespace))
	sshString(&signed, nil)
	sshString(&signed, []byte(hashAlg))
	sshString(&signed, h[:])
	// RSA keys sign with SHA-512, as ssh-keygen -Y sign does; git refuses
	// the old ssh-rsa (SHA-1) signatures.
	var sig *ssh.Signature
	var err error
	if as, ok := s.signer.(ssh.AlgorithmSigner); ok && s.signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		sig, err = as.SignWithAlgorithm(rand.Reader, signed.Bytes(), ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = s.signer.Sign(rand.Reader, signed.Bytes())
	}
	if err != nil {
		return "", err
	}
	var blob bytes.Buffer
	blob.WriteString("SSHSIG")
	binary.Write(&blob, binary.BigEndian, uint32(1))
	sshString(&blob, s.signer.PublicKey().Marshal())
	sshString(&blob, []byte(namespace))
	sshString(&blob, nil)
	sshString(&blob, []byte(hashAlg))
	sshString(&blob, ssh.Marshal(sig))
	enc := base64.StdEncoding.EncodeToString(blob.Bytes())
	var out strings.Builder
	out.WriteString("-----BEGIN SSH SIGNATURE-----\n")
	for len(enc) > 70 {
		out.WriteString(enc[:70] + "\n")
		enc = enc[70:]
	}
	out.WriteString(enc + "\n-----END SSH SIGNATURE-----\n")
	return out.String(), nil
}

// signCommit sets the commit's signature over its encoding without one.
func (s *sshSigner) signCommit(c *object.Commit) error {
	obj := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(obj); err != nil {
		return err
	}
	r, err := obj.Reader()
	if err != nil {
		return err
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	sig, err := s.sign(msg)
	if err != nil {
		return fmt.Errorf("sign commit: %w", err)
	}
	c.PGPSignature = sig
	return nil
}
