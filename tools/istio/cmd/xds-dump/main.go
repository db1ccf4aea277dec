// Command xds-dump prints the Envoy configuration istiod would send one
// proxy, computed by istiod's own configuration generator with Istio's
// in-process xDS test harness (istio.io/istio/pilot/test/xds, what Istio's
// own tests use) over the objects in YAML files: Istio's configuration
// (Gateways, VirtualServices, DestinationRules, ServiceEntries,
// PeerAuthentications, AuthorizationPolicies) and the Kubernetes objects
// beside it (Namespaces, Services, Pods, Secrets).
//
// Usage:
//
//	xds-dump -proxy router|sidecar -pod NAMESPACE/NAME FILE...
//	xds-dump -proxy ztunnel FILE...
//
// For router and sidecar, the proxy is the pod NAMESPACE/NAME of the files: a
// gateway (router) or a sidecar, with the pod's labels and service account.
// Prints one JSON object on stdout: {"listeners": [...], "routes": [...],
// "clusters": [...]}, each element an Envoy resource in proto JSON.
//
// For ztunnel (ambient mode), prints what istiod's ambient index computes for
// every ztunnel: {"authorizations": [...], "workloads": [...]}, the
// istio.security.Authorization resources of the AuthorizationPolicies and the
// istio.workload.Workload of every pod (with the policies bound to it), in
// proto JSON. istiod builds its ambient index only with PILOT_ENABLE_AMBIENT=true
// in the environment, as the ambient profile sets it.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/cluster"
	"istio.io/istio/pkg/config/schema/gvr"
	"istio.io/istio/pkg/kube/kclient/clienttest"
	"istio.io/istio/pkg/log"
	"istio.io/istio/pkg/util/protomarshal"
)

// gatewayAPIBundle is the bundle-version annotation the Gateway API's CRDs
// carry; istiod ignores TLSRoutes of a CRD below 1.5. Keep in step with
// GATEWAY_API_VERSION of tools/build-cluster.sh.
const gatewayAPIBundle = "v1.6.3"

// failer is the test.Failer the harness reports to, outside `go test`.
type failer struct{ cleanups []func() }

func (f *failer) Fail()             { f.FailNow() }
func (f *failer) FailNow()          { f.cleanup(); os.Exit(2) }
func (f *failer) Fatal(args ...any) { fmt.Fprintln(os.Stderr, args...); f.FailNow() }
func (f *failer) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	f.FailNow()
}
func (f *failer) Log(args ...any)                 { fmt.Fprintln(os.Stderr, args...) }
func (f *failer) Logf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
func (f *failer) Helper()                         {}
func (f *failer) Cleanup(fn func())               { f.cleanups = append(f.cleanups, fn) }
func (f *failer) Skip(args ...any)                { f.Fatal(append([]any{"skipped:"}, args...)...) }
func (f *failer) TempDir() string {
	d, err := os.MkdirTemp("", "xds-dump")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = os.RemoveAll(d) })
	return d
}

func (f *failer) cleanup() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
	f.cleanups = nil
}

type object struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string            `json:"name"`
		Namespace string            `json:"namespace"`
		Labels    map[string]string `json:"labels"`
	} `json:"metadata"`
	Spec struct {
		ServiceAccountName string `json:"serviceAccountName"`
	} `json:"spec"`
	Status struct {
		PodIP string `json:"podIP"`
	} `json:"status"`
}

func main() {
	kind := flag.String("proxy", "sidecar", "router (a gateway) or sidecar")
	pod := flag.String("pod", "", "NAMESPACE/NAME of the proxy's pod in the files")
	flag.Parse()
	if flag.NArg() == 0 || (*kind != "ztunnel" && !strings.Contains(*pod, "/")) {
		fmt.Fprintln(os.Stderr, "usage: xds-dump -proxy router|sidecar -pod NAMESPACE/NAME FILE...\n       xds-dump -proxy ztunnel FILE...")
		os.Exit(2)
	}
	// istiod logs to stdout by default: stdout is the JSON's.
	opts := log.DefaultOptions()
	opts.OutputPaths = []string{"stderr"}
	opts.SetDefaultOutputLevel("all", log.WarnLevel)
	if err := log.Configure(opts); err != nil {
		fmt.Fprintln(os.Stderr, "xds-dump:", err)
		os.Exit(1)
	}
	if err := run(*kind, *pod, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "xds-dump:", err)
		os.Exit(1)
	}
}

func run(kind, podRef string, files []string) error {
	var istio, kube []string
	var proxyPod *object
	gatewayAPI := false
	for _, file := range files {
		text, err := os.ReadFile(file)
		if err != nil {
			return err
		}
		for _, doc := range bytes.Split(text, []byte("\n---")) {
			if len(bytes.TrimSpace(doc)) == 0 {
				continue
			}
			var o object
			if err := yaml.Unmarshal(doc, &o); err != nil {
				return fmt.Errorf("%s: %v", file, err)
			}
			if o.Kind == "" {
				continue
			}
			if strings.HasPrefix(o.APIVersion, "gateway.networking.k8s.io/") {
				gatewayAPI = true
			}
			if strings.Contains(o.APIVersion, "istio.io/") {
				istio = append(istio, string(doc))
				// The ambient index reads the security policies from the
				// (fake) Kubernetes API, as istiod does, not from the
				// harness's configuration store.
				if kind == "ztunnel" && strings.HasPrefix(o.APIVersion, "security.istio.io/") {
					kube = append(kube, string(doc))
				}
			} else {
				kube = append(kube, string(doc))
			}
			if o.Kind == "Pod" && o.Metadata.Namespace+"/"+o.Metadata.Name == podRef {
				p := o
				proxyPod = &p
			}
		}
	}
	if proxyPod == nil && kind != "ztunnel" {
		return fmt.Errorf("no Pod %s in the files", podRef)
	}

	t := &failer{}
	defer t.cleanup()
	s := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{
		ConfigString:               strings.Join(istio, "\n---\n"),
		KubernetesObjectString:     strings.Join(kube, "\n---\n"),
		DisableSecretAuthorization: true,
	})
	if kind == "ztunnel" {
		return ztunnel(s)
	}
	if gatewayAPI {
		// The harness makes the Gateway API's CRDs without the
		// bundle-version annotation, which istiod reads to decide which
		// kinds it may watch: give them the annotation the real CRDs carry,
		// then push again once the Gateway controller has the objects.
		for _, g := range []schema.GroupVersionResource{
			gvr.GatewayClass, gvr.KubernetesGateway, gvr.HTTPRoute, gvr.GRPCRoute, gvr.TCPRoute, gvr.TLSRoute, gvr.ReferenceGrant,
		} {
			clienttest.MakeCRDWithAnnotations(t, s.KubeClient(), g, map[string]string{"gateway.networking.k8s.io/bundle-version": gatewayAPIBundle})
		}
	}

	ip := proxyPod.Status.PodIP
	if ip == "" {
		ip = "10.244.0.10"
	}
	ns := proxyPod.Metadata.Namespace
	sa := proxyPod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	p := &model.Proxy{
		ID:              proxyPod.Metadata.Name + "." + ns,
		ConfigNamespace: ns,
		Labels:          proxyPod.Metadata.Labels,
		IPAddresses:     []string{ip},
		Metadata: &model.NodeMetadata{
			Namespace:      ns,
			Labels:         proxyPod.Metadata.Labels,
			ServiceAccount: sa,
			ClusterID:      cluster.ID("Kubernetes"),
			IstioVersion:   "1.31.0",
		},
	}
	switch kind {
	case "router":
		p.Type = model.Router
	case "sidecar":
		p.Type = model.SidecarProxy
	default:
		return fmt.Errorf("-proxy %q: give router, sidecar or ztunnel", kind)
	}
	p = s.SetupProxy(p)

	listeners := s.Listeners(p)
	if gatewayAPI {
		// The Gateway controller converts the Gateway API objects
		// asynchronously: push until two pushes a second apart give the
		// same filter chains (or 30 s pass).
		deadline := time.Now().Add(30 * time.Second)
		last := -1
		for time.Now().Before(deadline) {
			s.Discovery.ConfigUpdate(&model.PushRequest{Forced: true, Reason: model.NewReasonStats(model.GlobalUpdate)})
			s.EnsureSynced(t)
			p = s.SetupProxy(p)
			listeners = s.Listeners(p)
			chains := 0
			for _, l := range listeners {
				chains += len(l.FilterChains)
			}
			if chains > 0 && chains == last {
				break
			}
			last = chains
			time.Sleep(time.Second)
		}
	}
	out := map[string][]json.RawMessage{
		"listeners": marshal(listeners),
		"routes":    marshal(s.RoutesFromListeners(p, listeners)),
		"clusters":  marshal(s.Clusters(p)),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

// ztunnel prints what every ztunnel is told: the authorizations and the
// workloads of the ambient index, once its collections have synced.
func ztunnel(s *xds.FakeDiscoveryServer) error {
	if s.AmbientIndex == nil {
		return fmt.Errorf("the harness has no ambient index (PILOT_ENABLE_AMBIENT is off)")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !s.AmbientIndex.HasSynced() {
		if time.Now().After(deadline) {
			return fmt.Errorf("the ambient index did not sync in 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	var authorizations []proto.Message
	for _, p := range s.AmbientIndex.Policies(nil) {
		authorizations = append(authorizations, p.Authorization)
	}
	var workloads []proto.Message
	for _, a := range s.AmbientIndex.All() {
		if w := a.GetWorkload(); w != nil {
			workloads = append(workloads, w)
		}
	}
	out := map[string][]json.RawMessage{
		"authorizations": marshal(authorizations),
		"workloads":      marshal(workloads),
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	return enc.Encode(out)
}

func marshal[T proto.Message](items []T) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(items))
	for _, m := range items {
		b, err := protomarshal.Marshal(m)
		if err != nil {
			fmt.Fprintln(os.Stderr, "xds-dump: marshalling:", err)
			os.Exit(1)
		}
		out = append(out, b)
	}
	return out
}
