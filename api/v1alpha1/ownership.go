package v1alpha1

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// The repository layout: releases/<namespace>/<name>/release.yaml. The
// directory above a release's own names the only namespace it may target.

// NamespaceOfPath is the namespace a release file's place in the
// repository gives it: the name of the directory above the release's own.
func NamespaceOfPath(file string) string {
	return path.Base(path.Dir(path.Dir(file)))
}

// DefaultAgentNamespace is where deploy/ installs the agent.
const DefaultAgentNamespace = "sluice-system"

// Tenancy is what a release may touch beyond objects in its own
// namespace: the agent's --allow-cluster-scoped, --agent-namespace and
// --allow-system-namespace, which validate takes too.
type Tenancy struct {
	// ClusterScoped lists the cluster-scoped kinds a render may hold, as
	// "Kind" or "Kind.group" ("*": any, for tools that only read).
	ClusterScoped []string
	// AgentNamespace is the agent's own namespace: no release targets it.
	AgentNamespace string
	// AllowSystem lists the protected namespaces (the agent's, kube-*)
	// releases may target all the same.
	AllowSystem []string
}

// Protected reports whether no release may target namespace ns: the
// cluster's own (kube-*) and the agent's, unless listed in AllowSystem.
func (t Tenancy) Protected(ns string) bool {
	agent := t.AgentNamespace
	if agent == "" {
		agent = DefaultAgentNamespace
	}
	return (strings.HasPrefix(ns, "kube-") || ns == agent) && !slices.Contains(t.AllowSystem, ns)
}

// AllowsClusterScoped reports whether a render may hold cluster-scoped
// objects of kind in API group.
func (t Tenancy) AllowsClusterScoped(group, kind string) bool {
	for _, k := range t.ClusterScoped {
		name, g, grouped := strings.Cut(k, ".")
		if k == "*" || name == kind && (!grouped || g == group) {
			return true
		}
	}
	return false
}

// CheckPlace reports a release that targets a namespace its place in the
// repository does not give it, or a protected one (kube-*, the agent's):
// whoever may write under releases/shop/ may deploy to namespace shop,
// nothing else.
func (p *Parsed) CheckPlace(t Tenancy) ErrorList {
	ns := p.Release.Metadata.Namespace
	var errs ErrorList
	// A release file with no two directories above it (a lone directory
	// given to sluice render) is outside the layout: nothing to bind.
	if want := NamespaceOfPath(p.File); path.Dir(path.Dir(p.File)) != "." && ns != want {
		errs = append(errs, p.Errorf("metadata.namespace", "a release under %s/ may only target namespace %q, the directory's name; got %q (move it to %s/%s/%s/ or change metadata.namespace)",
			path.Dir(path.Dir(p.File)), want, ns, path.Dir(path.Dir(path.Dir(p.File))), ns, path.Base(path.Dir(p.File))))
	}
	if t.Protected(ns) {
		errs = append(errs, p.Errorf("metadata.namespace", "%s is a protected namespace (the cluster's own kube-*, or the agent's): no release targets it unless the agent is started with --allow-system-namespace=%s", ns, ns))
	}
	return errs
}

// CheckObject reports a rendered object a release may not create: one in
// another namespace, or of a cluster-scoped kind the tenancy does not
// allow. Which kinds are cluster-scoped is known offline for the built-in
// APIs (ClusterScopedKind); the agent asks the cluster for the rest.
func (p *Parsed) CheckObject(t Tenancy, group, kind, name, ns string) *FieldError {
	own := p.Release.Metadata.Namespace
	if ClusterScopedKind(group, kind) {
		if t.AllowsClusterScoped(group, kind) || group == "" && kind == "Namespace" && name == own {
			return nil
		}
		return &FieldError{File: p.File, Field: "spec.source", Message: fmt.Sprintf("the render holds %s/%s, a cluster-scoped kind: a release creates objects in its own namespace only, unless the agent lists the kind in --allow-cluster-scoped", kind, name)}
	}
	if ns == "" || ns == own {
		return nil
	}
	return &FieldError{File: p.File, Field: "spec.source", Message: fmt.Sprintf("the render holds %s/%s in namespace %q: a release in namespace %q creates objects in its own namespace only",
		kind, name, ns, own)}
}

// clusterScoped are the built-in cluster-scoped kinds by API group.
var clusterScoped = map[string][]string{
	"":                             {"Namespace", "Node", "PersistentVolume", "ComponentStatus"},
	"rbac.authorization.k8s.io":    {"ClusterRole", "ClusterRoleBinding"},
	"apiextensions.k8s.io":         {"CustomResourceDefinition"},
	"admissionregistration.k8s.io": {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"},
	"apiregistration.k8s.io":       {"APIService"},
	"storage.k8s.io":               {"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"},
	"scheduling.k8s.io":            {"PriorityClass"},
	"node.k8s.io":                  {"RuntimeClass"},
	"networking.k8s.io":            {"IngressClass", "IPAddress", "ServiceCIDR"},
	"certificates.k8s.io":          {"CertificateSigningRequest", "ClusterTrustBundle"},
	"flowcontrol.apiserver.k8s.io": {"FlowSchema", "PriorityLevelConfiguration"},
	"gateway.networking.k8s.io":    {"GatewayClass"},
	"resource.k8s.io":              {"DeviceClass"},
}

// ClusterScopedKind reports whether kind in group is one of Kubernetes'
// (and the Gateway API's) cluster-scoped kinds.
func ClusterScopedKind(group, kind string) bool {
	return slices.Contains(clusterScoped[group], kind)
}
