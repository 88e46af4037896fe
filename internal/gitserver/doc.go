// Package gitserver runs real Git servers for tests on loopback: smart HTTP
// (git http-backend behind net/http/cgi, with basic auth) and SSH (Debian's
// openssh-server with a temporary host key, authorized_keys and git-shell).
// Repositories are made and changed with the git command line, as people do.
package gitserver
