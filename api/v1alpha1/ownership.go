package v1alpha1

import (
	"fmt"
	"path"
	"strings"
)

// The repository layout: releases/<namespace>/<name>/release.yaml. The
// directory above a release's own names the only namespace it may target.

// NamespaceOfPath is the namespace a release file's place in the
// repository gives it: the name of the directory above the release's own.
func NamespaceOfPath(file string) string {
	return path.Base(path.Dir(path.Dir(file)))
}

// CheckPlace reports a release that targets a namespace its place in the
// repository does not give it, or the cluster's own (kube-*): whoever may
// write under releases/shop/ may deploy to namespace shop, nothing else.
func (p *Parsed) CheckPlace() ErrorList {
	ns := p.Release.Metadata.Namespace
	var errs ErrorList
	// A release file with no two directories above it (a lone directory
	// given to sluice render) is outside the layout: nothing to bind.
	if want := NamespaceOfPath(p.File); path.Dir(path.Dir(p.File)) != "." && ns != want {
		errs = append(errs, p.Errorf("metadata.namespace", "a release under %s/ may only target namespace %q, the directory's name; got %q (move it to %s/%s/%s/ or change metadata.namespace)",
			path.Dir(path.Dir(p.File)), want, ns, path.Dir(path.Dir(path.Dir(p.File))), ns, path.Base(path.Dir(p.File))))
	}
	if strings.HasPrefix(ns, "kube-") {
		errs = append(errs, p.Errorf("metadata.namespace", "%s is the cluster's own namespace; no release targets it", ns))
	}
	return errs
}

// CheckObjectNamespace reports a rendered object placed in a namespace
// other than the release's.
func (p *Parsed) CheckObjectNamespace(kind, name, ns string) *FieldError {
	if ns == "" || ns == p.Release.Metadata.Namespace {
		return nil
	}
	return &FieldError{File: p.File, Field: "spec.source", Message: fmt.Sprintf("the render holds %s/%s in namespace %q: a release in namespace %q creates objects in its own namespace only",
		kind, name, ns, p.Release.Metadata.Namespace)}
}
