// Package render turns a release's source into Kubernetes objects with
// kustomize's krusty library, safely and once per source tree.
//
// Sources are read through a filesys.FileSystem: DiskFS for a directory on
// disk (the CLI) and a Git tree at a commit (gitsource). Rendering is safe by
// default: root-only loading, no remote bases, no exec or containerized
// plugins, no Helm, symlinks that leave the repository refused, and limits on
// file size and object count. Each Result carries two digests: one over the
// whole render and the "version" over the workload plus the ConfigMaps and
// Secrets its pod template references (see DESIGN.md).
package render
