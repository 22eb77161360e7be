package apps

import (
	"context"
	"fmt"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Delete removes an application with its users, devices, codes, approval requests, callbacks and
// outbox messages. The console's own application cannot be deleted (its users are the
// operators). The audit trail keeps what happened to the application.
func (s *Service) Delete(ctx context.Context, id int64) error {
	a, err := s.store.GetApp(ctx, id)
	if err != nil {
		return err
	}
	if a.Console {
		return fmt.Errorf("%w: the console's own application cannot be deleted", ErrInvalid)
	}
	if err := s.store.DeleteApp(ctx, id); err != nil {
		return err
	}
	s.record(ctx, twofold.AuditEvent{Action: twofold.AuditAppDeleted, AppID: id, Details: map[string]string{"name": a.Name}})
	return nil
}
