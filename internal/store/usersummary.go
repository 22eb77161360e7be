package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Users by the handful, for the console's lists: the people behind the ids of a page of
// approval requests, messages or audit entries, and what each user of a page has enrolled.

// maxUsersAtOnce bounds one query's list of ids (a page holds at most a few hundred rows).
const maxUsersAtOnce = 500

// idList returns placeholders $first..$(first+len(ids)-1) and the ids as arguments.
func idList(first int, ids []int64) (string, []any) {
	marks := make([]string, len(ids))
	args := make([]any, len(ids))
	for i, id := range ids {
		marks[i] = "$" + strconv.Itoa(first+i)
		args[i] = id
	}
	return strings.Join(marks, ", "), args
}

// UsersByID returns the users of the application with the given public ids; ids of no user
// (deleted since, or never) are left out.
func (s *Store) UsersByID(ctx context.Context, appID int64, ids []int64) ([]twofold.User, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > maxUsersAtOnce {
		return nil, fmt.Errorf("users by id: %d ids, at most %d at once", len(ids), maxUsersAtOnce)
	}
	marks, args := idList(2, ids)
	out, err := queryAll(ctx, s.r, scanUser, `SELECT `+userColumns+` FROM users WHERE app_id = $1 AND public_id IN (`+marks+`)`,
		append([]any{appID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("users by id: %w", err)
	}
	return out, nil
}

// UserFactors says, for each of the application's users with the given public ids, whether it
// has an authenticator seed and how many devices; users with neither are in the map too.
func (s *Store) UserFactors(ctx context.Context, appID int64, ids []int64) (map[int64]twofold.UserFactors, error) {
	out := map[int64]twofold.UserFactors{}
	if len(ids) == 0 {
		return out, nil
	}
	if len(ids) > maxUsersAtOnce {
		return nil, fmt.Errorf("user factors: %d ids, at most %d at once", len(ids), maxUsersAtOnce)
	}
	marks, args := idList(2, ids)
	rows, err := queryAll(ctx, s.r, func(r rowScanner) ([3]int64, error) {
		var v [3]int64
		err := r.Scan(&v[0], &v[1], &v[2])
		return v, err
	}, `SELECT u.public_id,
		(SELECT COUNT(*) FROM authenticators a WHERE a.user_id = u.id),
		(SELECT COUNT(*) FROM devices d WHERE d.user_id = u.id)
		FROM users u WHERE u.app_id = $1 AND u.public_id IN (`+marks+`)`, append([]any{appID}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("user factors: %w", err)
	}
	for _, v := range rows {
		out[v[0]] = twofold.UserFactors{Authenticator: v[1] > 0, Devices: int(v[2])}
	}
	return out, nil
}
