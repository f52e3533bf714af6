package bench

import "testing"

func TestClusterTroupeScenarios(t *testing.T) {
	cfg := ClusterConfig{Members: 3, Requests: 50, Warmup: 10, Activations: 200, HandoverGrains: 200}
	lat, err := TroupeClusterRequest(cfg)
	if err != nil || lat.P50 <= 0 {
		t.Fatalf("request: %+v, %v", lat, err)
	}
	d, err := TroupeClusterActivations(cfg)
	if err != nil || d <= 0 {
		t.Fatalf("activations: %v, %v", d, err)
	}
	d, err = TroupeClusterHandover(cfg)
	if err != nil || d <= 0 {
		t.Fatalf("handover: %v, %v", d, err)
	}
}
