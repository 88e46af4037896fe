// Package routes is sluice's model of the Gateway API routes a release
// names: an HTTPRoute or a GRPCRoute, decoded strictly into the
// gateway-api module's typed structs, the canary transform sluice applies
// to them (weights, header rules, mirrors) and the Gateway API's limits on
// the result.
//
// It is a leaf shared by two stages of the pipeline: render checks, before
// anything is applied, that the widest shape a release's steps can give its
// route stays within the limits the API server enforces; strategy applies
// the shape a decision computed. Rules that do not name the rolled-out
// Service are copied through untouched, field for field.
package routes
