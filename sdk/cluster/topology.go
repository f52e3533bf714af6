package cluster

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// ClusterIdentity names a grain: its kind and its id within the kind. A
// grain has one identity forever; where its activation lives is the
// cluster's business.
type ClusterIdentity struct {
	// Kind is the registered kind of the grain (no '/').
	Kind string
	// ID tells the grain apart from the other grains of its kind.
	ID string
}

// String returns "kind/id".
func (id ClusterIdentity) String() string { return id.Kind + "/" + id.ID }

// Member is one actor system in the cluster.
type Member struct {
	// ID is unique per incarnation: a process that restarts joins as a new
	// member. Members are told apart by ID, never by address.
	ID string
	// Address is where the member's actors are reached (its remote address).
	Address string
	// Kinds are the grain kinds the member hosts; a client hosts none.
	Kinds []string
}

// HasKind reports whether m hosts kind.
func (m Member) HasKind(kind string) bool { return slices.Contains(m.Kinds, kind) }

// Topology is the cluster's member list as one member sees it.
type Topology struct {
	// Epoch counts the topologies this member has seen, from 1.
	Epoch uint64
	// Hash identifies the member set: members that see the same set have
	// the same Hash. Ownership requests carry it.
	Hash uint64
	// Members, sorted by ID.
	Members []Member
	// Joined and Left are the changes from the previous topology.
	Joined, Left []Member
}

// Expelled is published on the event stream when the cluster counts this
// member as gone although it still runs: the membership dropped it (a
// failure detector declared it dead, for example after a long pause), or
// it was listed again after that and the other members refused it. The
// others have started its activations again elsewhere, so the member
// closes itself at once, as Close does; calls then fail with
// ErrNotStarted. A process that should go on serving must join again with
// a new remote (a new member ID); most simply it exits and is restarted.
type Expelled struct {
	// Member is this member.
	Member Member
	// Reason says how the cluster came to count it as gone.
	Reason string
}

// Member returns the member with the given ID.
func (t Topology) Member(id string) (Member, bool) {
	i, ok := slices.BinarySearchFunc(t.Members, id, func(m Member, id string) int { return cmp.Compare(m.ID, id) })
	if !ok {
		return Member{}, false
	}
	return t.Members[i], true
}

// normalize sorts members by ID and drops duplicate IDs (keeping the first).
func normalize(members []Member) []Member {
	out := slices.Clone(members)
	slices.SortStableFunc(out, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	return slices.CompactFunc(out, func(a, b Member) bool { return a.ID == b.ID })
}

// topologyHash hashes the sorted member IDs.
func topologyHash(sorted []Member) uint64 {
	h := fnvOffset
	for _, m := range sorted {
		h = fnvString(h, m.ID)
		h = fnvByte(h, 0)
	}
	return mix64(h)
}

// diff returns the members of next not in prev, and of prev not in next;
// both lists sorted by ID.
func diff(prev, next []Member) (joined, left []Member) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case j == len(next) || i < len(prev) && prev[i].ID < next[j].ID:
			left = append(left, prev[i])
			i++
		case i == len(prev) || next[j].ID < prev[i].ID:
			joined = append(joined, next[j])
			j++
		default:
			i++
			j++
		}
	}
	return joined, left
}

// FNV-1a, with a final mix so that rendezvous scores are well spread.
const (
	fnvOffset uint64 = 14695981039346656037
	fnvPrime  uint64 = 1099511628211
)

func fnvString(h uint64, s string) uint64 {
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= fnvPrime
	}
	return h
}

func fnvByte(h uint64, b byte) uint64 {
	h ^= uint64(b)
	return h * fnvPrime
}

// mix64 is splitmix64's finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

func identityHash(id ClusterIdentity) uint64 {
	return fnvString(fnvByte(fnvString(fnvOffset, id.Kind), 0), id.ID)
}

// placement answers "who owns this identity" for one topology: the
// rendezvous-hash winner among the members that host the identity's kind.
// It is immutable, so it is shared freely.
type placement struct {
	topo  Topology
	kinds map[string][]scored // kind → its hosts
}

type scored struct {
	id   string
	seed uint64
}

func newPlacement(t Topology) *placement {
	p := &placement{topo: t, kinds: make(map[string][]scored)}
	for _, m := range t.Members {
		seed := mix64(fnvString(fnvOffset, m.ID))
		for _, k := range m.Kinds {
			p.kinds[k] = append(p.kinds[k], scored{id: m.ID, seed: seed})
		}
	}
	return p
}

// owner returns the ID of the member that owns id, or false if no member
// hosts its kind.
func (p *placement) owner(id ClusterIdentity) (string, bool) {
	hosts := p.kinds[id.Kind]
	if len(hosts) == 0 {
		return "", false
	}
	h := identityHash(id)
	best, bestScore := "", uint64(0)
	for _, m := range hosts {
		if s := mix64(m.seed ^ h); s > bestScore || best == "" || s == bestScore && m.id < best {
			best, bestScore = m.id, s
		}
	}
	return best, true
}

// grainName is the actor name of an activation; IdentityOf reverses it.
func grainName(id ClusterIdentity, incarnation uint64) string {
	var b strings.Builder
	b.Grow(len(grainPrefix) + len(id.Kind) + len(id.ID) + 2 + 20) // "/", "#", digits
	b.WriteString(grainPrefix)
	b.WriteString(id.Kind)
	b.WriteByte('/')
	b.WriteString(id.ID)
	b.WriteByte('#')
	var num [20]byte
	b.Write(strconv.AppendUint(num[:0], incarnation, 10))
	return b.String()
}

const grainPrefix = "g/"

// parseGrainName returns the identity of an activation's actor name.
func parseGrainName(name string) (ClusterIdentity, bool) {
	rest, ok := strings.CutPrefix(name, grainPrefix)
	if !ok {
		return ClusterIdentity{}, false
	}
	kind, rest, ok := strings.Cut(rest, "/")
	if !ok || kind == "" {
		return ClusterIdentity{}, false
	}
	i := strings.LastIndexByte(rest, '#')
	if i < 0 || i == len(rest)-1 {
		return ClusterIdentity{}, false
	}
	for _, c := range rest[i+1:] {
		if c < '0' || c > '9' {
			return ClusterIdentity{}, false
		}
	}
	return ClusterIdentity{Kind: kind, ID: rest[:i]}, true
}
