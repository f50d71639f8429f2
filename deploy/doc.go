// Package deploy holds deployment definitions for running several sluice
// serve processes on one PostgreSQL store: a container image
// (Dockerfile), Kubernetes manifests (kubernetes/, applied with
// kubectl apply -k) and a systemd unit (systemd/). It has no code: its
// test parses the definitions and checks that they agree with each other
// and with what sluice serve reads. See README.md.
package deploy
