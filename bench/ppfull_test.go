package bench

import "testing"

func BenchmarkPPFull(b *testing.B) {
	cfg := DefaultPingPong()
	for b.Loop() {
		TroupePingPong(cfg)
	}
	b.ReportMetric(float64(cfg.Total())*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mmsg/s")
}
