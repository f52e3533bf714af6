package remote

import (
	"context"
	"errors"
	"fmt"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// Spawn starts an actor of a registered kind on the system at address,
// with a generated name, and returns its PID.
func (r *Remote) Spawn(ctx context.Context, address, kind string) (*actor.PID, error) {
	return r.SpawnNamed(ctx, address, kind, "")
}

// SpawnNamed starts an actor of a registered kind on the system at address,
// under name (a generated one if empty). Errors match ErrUnknownKind or
// actor.ErrNameExists when the target says so, and ErrProtocol when its
// answer makes no sense.
func (r *Remote) SpawnNamed(ctx context.Context, address, kind, name string) (*actor.PID, error) {
	if address == r.Address() {
		return r.spawnLocal(kind, name)
	}
	res, err := r.sys.Request(ctx, actor.NewPID(address, activatorName), &wire.SpawnRequest{Kind: kind, Name: name})
	if err != nil {
		return nil, fmt.Errorf("remote: spawn %q on %s: %w", kind, address, err)
	}
	resp, ok := res.(*wire.SpawnResponse)
	if !ok {
		return nil, fmt.Errorf("%w: spawn %q on %s: answered %T", ErrProtocol, kind, address, res)
	}
	switch resp.GetStatus() {
	case wire.SpawnStatus_SPAWN_STATUS_OK:
		if resp.GetPid().GetId() == "" {
			return nil, fmt.Errorf("%w: spawn %q on %s: answered success without a PID", ErrProtocol, kind, address)
		}
		return resp.GetPid(), nil
	case wire.SpawnStatus_SPAWN_STATUS_UNKNOWN_KIND:
		return nil, fmt.Errorf("%w: %q on %s", ErrUnknownKind, kind, address)
	case wire.SpawnStatus_SPAWN_STATUS_NAME_EXISTS:
		return nil, fmt.Errorf("remote: spawn on %s: %w: %q", address, actor.ErrNameExists, name)
	}
	return nil, fmt.Errorf("remote: spawn %q on %s: %s", kind, address, resp.GetError())
}

// spawnLocal spawns a registered kind here.
func (r *Remote) spawnLocal(kind, name string) (*actor.PID, error) {
	r.kindsMu.RLock()
	props, ok := r.kinds[kind]
	r.kindsMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownKind, kind)
	}
	return r.sys.SpawnNamed(props, name) // a generated name if empty
}

// activate is the activator actor: it serves SpawnRequests from peers.
func (r *Remote) activate(c actor.Context) {
	req, ok := c.Message().(*wire.SpawnRequest)
	if !ok {
		return
	}
	pid, err := r.spawnLocal(req.GetKind(), req.GetName())
	resp := &wire.SpawnResponse{Pid: pid, Status: wire.SpawnStatus_SPAWN_STATUS_OK}
	switch {
	case err == nil:
	case errors.Is(err, ErrUnknownKind):
		resp.Status, resp.Error = wire.SpawnStatus_SPAWN_STATUS_UNKNOWN_KIND, err.Error()
	case errors.Is(err, actor.ErrNameExists):
		resp.Status, resp.Error = wire.SpawnStatus_SPAWN_STATUS_NAME_EXISTS, err.Error()
	default:
		resp.Status, resp.Error = wire.SpawnStatus_SPAWN_STATUS_FAILED, err.Error()
	}
	c.Respond(resp)
}
