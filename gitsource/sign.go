package gitsource

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/hiddeco/sshsig"
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

// sign returns the armored SSH signature of message (namespace git,
// SHA-512; RSA keys sign with rsa-sha2-512 as ssh-keygen -Y sign does).
func (s *sshSigner) sign(message []byte) (string, error) {
	sig, err := sshsig.Sign(bytes.NewReader(message), s.signer, sshsig.HashSHA512, "git")
	if err != nil {
		return "", err
	}
	return string(sshsig.Armor(sig)), nil
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
