package remote

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// receiver delivers the batches of one stream to their local targets. Each
// end of a stream has one: the listener for the dialer's batches, the
// dialer for the listener's. It is used by one goroutine at a time.
type receiver struct {
	r       *Remote
	address string // the peer's advertised address
	dec     *wire.Decoder

	// Caches across frames, so that a frame's tables resolve without
	// allocating: PIDs (which keep their resolved processes) and decoders.
	targets map[string]*actor.PID
	senders map[wire.Sender]*actor.PID
	types   map[typeKey]decoder

	// The current frame's tables, resolved once per frame.
	frameTargets []*actor.PID
	frameSenders []*actor.PID
	frameTypes   []decoder
}

func newReceiver(r *Remote, address string) *receiver {
	return &receiver{
		r: r, address: address, dec: wire.NewDecoder(),
		targets: make(map[string]*actor.PID), senders: make(map[wire.Sender]*actor.PID), types: make(map[typeKey]decoder),
	}
}

// deliverBatch delivers the batch the decoder just decoded from a frame of
// size bytes.
func (rc *receiver) deliverBatch(size int) {
	b := &rc.dec.Batch
	rc.r.cfg.Metrics.BatchReceived(rc.address, len(b.Envelopes), size)
	rc.resolveTables(b)
	for i := range b.Envelopes {
		rc.deliver(b, &b.Envelopes[i])
	}
}

// receive reads a stream's frames, delivering batches, until the stream
// fails (its error) or the peer says goodbye (its Disconnect). control
// makes the direction's control frame (wire.NewRequest on the listener's
// side). A malformed frame is logged and dropped: gRPC keeps frames apart,
// so the stream is still in step.
func (rc *receiver) receive(stream interface{ RecvMsg(any) error }, control func() proto.Message) (*wire.Disconnect, error) {
	var f frame
	for {
		if err := stream.RecvMsg(&f); err != nil {
			return nil, err
		}
		ctl, err := rc.dec.Decode(f.data, control)
		switch {
		case err != nil:
			rc.r.logger.Error("remote: dropped a malformed frame", "peer", rc.address, "bytes", len(f.data), "error", err)
		case ctl == nil:
			rc.deliverBatch(len(f.data))
		default:
			if d := ctl.(interface{ GetDisconnect() *wire.Disconnect }).GetDisconnect(); d != nil {
				return d, nil
			}
			rc.r.logger.Error("remote: unexpected frame", "peer", rc.address, "frame", ctl)
		}
	}
}

// typeKey names a type as an envelope does.
type typeKey struct {
	serializer uint32
	name       string
}

// decoder turns payloads into messages of one type.
type decoder struct {
	key typeKey
	fn  func([]byte) (any, error) // from the serializer's decoderFor
	err error                     // why the type cannot be decoded
}

// resolveTables turns the frame's tables into PIDs and decoders.
func (rc *receiver) resolveTables(b *wire.Batch) {
	rc.frameTargets = rc.frameTargets[:0]
	for _, id := range b.TargetIDs {
		rc.frameTargets = append(rc.frameTargets, rc.targetPID(id))
	}
	rc.frameSenders = rc.frameSenders[:0]
	for _, s := range b.Senders {
		rc.frameSenders = append(rc.frameSenders, rc.senderPID(s))
	}
	// Slots are filled by the first envelope of each type (see deliver).
	rc.frameTypes = append(rc.frameTypes[:0], make([]decoder, len(b.TypeNames))...)
}

// decoderFor returns the cached decoder of a type.
func (rc *receiver) decoderFor(k typeKey) decoder {
	if d, ok := rc.types[k]; ok {
		return d
	}
	d := decoder{key: k}
	if ser, ok := rc.r.serializers.byID(k.serializer); ok {
		d.fn, d.err = ser.decoderFor(k.name)
	} else {
		d.err = fmt.Errorf("%w: %s: no serializer %d", ErrUnknownType, k.name, k.serializer)
	}
	if len(rc.types) >= maxInboundCache {
		clear(rc.types)
	}
	rc.types[k] = d
	return d
}

// resolved reports whether d was made by decoderFor: a slot of the frame's
// type table is zero until its first envelope, and a zero key is no proof
// of a resolved slot (a peer may send serializer 0 and an empty name).
func (d *decoder) resolved() bool { return d.fn != nil || d.err != nil }

// decode decodes a payload.
func (d *decoder) decode(payload []byte) (any, error) {
	if d.err != nil {
		return nil, d.err
	}
	msg, err := d.fn(payload)
	if err != nil && !errors.Is(err, ErrUnknownType) {
		err = fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return msg, err
}

// deliver hands one message to its local target.
func (rc *receiver) deliver(b *wire.Batch, m *wire.Message) {
	r := rc.r
	var sender *actor.PID
	if m.SenderIndex > 0 {
		sender = rc.frameSenders[m.SenderIndex-1]
	}
	if m.Err != nil {
		r.logger.Error("remote: dropped a malformed message", "peer", rc.address, "error", m.Err)
		if sender != nil {
			r.sys.DeadLetter(nil, &actor.Envelope{Message: UndecodedMessage{Size: len(m.Payload)}, Sender: sender}, m.Err)
		}
		return
	}
	target := rc.frameTargets[m.TargetIndex]
	d := &rc.frameTypes[m.TypeIndex]
	if k := (typeKey{m.SerializerID, b.TypeNames[m.TypeIndex]}); !d.resolved() {
		*d = rc.decoderFor(k) // the first envelope of this type in the frame
	} else if d.key != k {
		other := rc.decoderFor(k) // same name, another serializer: rare
		d = &other
	}
	var msg any
	var err error
	// The header counts, as on the sender, which counts a little more: the
	// header's encoding rather than its bare strings, and the type name and
	// PIDs too. So what a sender lets through, a receiver of the same limit
	// accepts.
	size := len(m.Payload)
	for _, s := range m.Header {
		size += len(s)
	}
	if size > r.cfg.MaxMessageSize {
		err = fmt.Errorf("%w: %s of %d bytes from %s, limit %d", ErrMessageTooLarge, d.key.name, size, rc.address, r.cfg.MaxMessageSize)
	} else {
		msg, err = d.decode(m.Payload)
	}
	if err != nil {
		r.sys.DeadLetter(target, &actor.Envelope{
			Message: UndecodedMessage{TypeName: d.key.name, SerializerID: m.SerializerID, Size: len(m.Payload)},
			Sender:  sender,
		}, err)
		return
	}
	if m.System {
		// A peer speaks for its own actors only: it reports their end, and
		// watches or unwatches for them, not for another member's (whose
		// watchers would stop watching, or never hear of an end).
		var who **actor.PID
		switch t := msg.(type) {
		case *actor.Terminated:
			who = &t.Who
		case *actor.Watch:
			who = &t.Watcher
		case *actor.Unwatch:
			who = &t.Watcher
		}
		if who != nil && *who != nil {
			switch (*who).Address {
			case rc.address:
			case actor.LocalAddress: // an actor made before its remote started
				*who = actor.NewPID(rc.address, (*who).Id)
			default:
				err := fmt.Errorf("%w: %s sent %s for %s/%s, not its actor", ErrProtocol, rc.address, d.key.name, (*who).Address, (*who).Id)
				r.logger.Error("remote: dropped a forged system message", "peer", rc.address, "error", err)
				r.sys.DeadLetter(target, msg, err)
				return
			}
		}
		switch t := msg.(type) {
		case *actor.Terminated:
			// A watch ends once: one no longer in the set was unwatched, or
			// ended already (AddressTerminated), and its watcher hears no
			// more of it.
			if t.GetWho() != nil {
				if p := r.existingPeer(t.Who.Address); p == nil || !p.removeWatch(t.Who.Id, target) {
					r.logger.Debug("remote: dropped a Terminated for a watch that has ended", "peer", rc.address, "who", t.Who.Id, "watcher", target.Id)
					return
				}
			}
		case *actor.Watch:
			if t.GetWatcher() != nil {
				r.peer(rc.address).watchedLocally(target.Id, t.Watcher)
			}
		case *actor.Unwatch:
			if t.GetWatcher() != nil {
				r.peer(rc.address).unwatchedLocally(target.Id, t.Watcher)
			}
		}
		r.sys.SendSystemMessage(target, msg)
		return
	}
	var item any = msg
	if sender != nil || m.Header != nil {
		env := &actor.Envelope{Message: msg, Sender: sender}
		if m.Header != nil {
			env.Header = make(actor.Header, len(m.Header)/2)
			for i := 0; i < len(m.Header); i += 2 {
				env.Header[m.Header[i]] = m.Header[i+1]
			}
		}
		item = env
	}
	r.sys.Send(target, item)
}

// targetPID returns a cached PID for a local actor id. A future's is not
// cached: a future takes one reply.
func (rc *receiver) targetPID(id string) *actor.PID {
	if actor.IsFutureID(id) {
		return actor.NewPID(rc.r.address, id)
	}
	if pid, ok := rc.targets[id]; ok {
		return pid
	}
	if len(rc.targets) >= maxInboundCache {
		clear(rc.targets)
	}
	pid := actor.NewPID(rc.r.address, id)
	rc.targets[id] = pid
	return pid
}

// senderPID returns a cached PID for a sender; not for a future, which
// sends one request.
func (rc *receiver) senderPID(s wire.Sender) *actor.PID {
	if actor.IsFutureID(s.ID) {
		return actor.NewPID(s.Address, s.ID)
	}
	if pid, ok := rc.senders[s]; ok {
		return pid
	}
	if len(rc.senders) >= maxInboundCache {
		clear(rc.senders)
	}
	pid := actor.NewPID(s.Address, s.ID)
	rc.senders[s] = pid
	return pid
}
