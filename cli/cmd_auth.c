/*
 * cmd_auth.c - artemis login, logout and users (MANAGEMENT.md §3.2.7): the
 * /api/auth calls, and the token file the other commands send from.
 *
 * login keeps the token in ~/.config/artemis/token (cli_token_path):
 * written to a new file of mode 0600 in a directory of mode 0700, then
 * renamed over the old one, so no other user can read it at any moment.
 * Passwords come from the terminal without echo, or from stdin (scripts);
 * they are never an argument (ps would show them) and never printed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_int.h"

#define PASSWORD_MAX 256

/* mkdir -p of the token's directory, mode 0700. */
static int auth__mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int rc = mkdir(path, 0700);
		*p = '/';
		if (rc < 0 && errno != EEXIST)
			return -errno;
	}
	return 0;
}

static int auth__save_token(cli_t *c, const char *token)
{
	char path[1024], tmp[1100];
	if (cli_token_path(path, sizeof(path)) < 0) {
		fprintf(stderr, "artemis %s: no HOME to keep the token in\n", c->cmd);
		return 1;
	}
	snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
	int fd =
	    auth__mkdirs(path) < 0 ? -1 : open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	bool ok = fd >= 0 && write(fd, token, strlen(token)) == (ssize_t)strlen(token) &&
	          write(fd, "\n", 1) == 1;
	if (fd >= 0)
		ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		fprintf(stderr, "artemis %s: %s: %s\n", c->cmd, path, strerror(errno));
		unlink(tmp);
		return 1;
	}
	return 0;
}

int cli_cmd_login(cli_t *c)
{
	char password[PASSWORD_MAX];
	const char *user = c->nargs > 0 ? c->args[0] : "admin";
	json_t *out = NULL;
	int rc = cli_read_secret(c, "password: ", password, sizeof(password));

	if (rc == 0 && (rc = cli_client(c, false)) == 0) {
		json_t *body = json_pack("{s:s, s:s}", "username", user, "password", password);
		/* A login sends no token of its own. */
		c->token = NULL;
		rc = cli_api(c, "POST", "/api/auth/login", body, &out);
		json_decref(body);
	}
	memset(password, 0, sizeof(password));
	if (rc != 0)
		return rc;
	json_t *data = json_object_get(out, "data");
	const char *token = json_string_value(json_object_get(data, "accessToken"));
	if (!token) {
		fprintf(stderr, "artemis login: the node answered without a token\n");
		json_decref(out);
		return 1;
	}
	rc = auth__save_token(c, token);
	if (rc == 0 && !c->json)
		printf("logged in as %s (the token expires in %lld s)\n", user,
		       (long long)json_integer_value(json_object_get(data, "expiresIn")));
	else if (rc == 0)
		printf("{\"username\":\"%s\",\"expiresIn\":%lld}\n", user,
		       (long long)json_integer_value(json_object_get(data, "expiresIn")));
	json_decref(out);
	return rc;
}

int cli_cmd_logout(cli_t *c)
{
	char path[1024];
	json_t *out = NULL;
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	if (c->token)
		rc = cli_api(c, "POST", "/api/auth/logout", NULL, &out);
	json_decref(out);
	/* The token is forgotten whatever the node said. */
	if (cli_token_path(path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT) {
		fprintf(stderr, "artemis logout: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (rc == 0)
		printf("logged out\n");
	return rc;
}

/* ---- users --------------------------------------------------------------------- */

/* The user named name from GET /api/auth/users: its id, or -1 (printed). */
static long long auth__user_id(cli_t *c, const char *name)
{
	json_t *out = NULL, *u;
	size_t i;
	long long id = -1;
	if (cli_api(c, "GET", "/api/auth/users", NULL, &out) != 0)
		return -1;
	json_array_foreach(json_object_get(out, "data"), i, u)
	{
		if (strcasecmp(cli_str(u, "username"), name) == 0)
			id = json_integer_value(json_object_get(u, "userId"));
	}
	json_decref(out);
	if (id < 0)
		fprintf(stderr, "artemis users: no user %s\n", name);
	return id;
}

static void auth__user_row(json_t *u, const char **cells, char scratch[8][64])
{
	snprintf(scratch[0], 64, "%lld",
	         (long long)json_integer_value(json_object_get(u, "userId")));
	cli_time(json_integer_value(json_object_get(u, "createdAt")) * 1000, scratch[1], 64);
	cells[0] = scratch[0];
	cells[1] = cli_str(u, "username");
	cells[2] = cli_str(u, "role");
	cells[3] = cli_str(u, "status");
	cells[4] = cli_str(u, "email");
	cells[5] = scratch[1];
}

static int auth__users_list(cli_t *c)
{
	static const char *const head[] = {"ID", "USER", "ROLE", "STATUS", "EMAIL", "CREATED"};
	return cli_list(c, "/api/auth/users", head, 6, auth__user_row);
}

static int auth__users_create(cli_t *c, const char *name)
{
	char password[PASSWORD_MAX];
	json_t *out = NULL;
	int rc = cli_read_secret(c, "password of the new user: ", password, sizeof(password));
	if (rc != 0)
		return rc;
	json_t *body = json_pack("{s:s, s:s, s:s}", "username", name, "password", password, "role",
	                         c->role ? c->role : "viewer");
	memset(password, 0, sizeof(password));
	if (c->email)
		json_object_set_new(body, "email", json_string(c->email));
	if (c->description)
		json_object_set_new(body, "description", json_string(c->description));
	rc = cli_api(c, "POST", "/api/auth/users", body, &out);
	json_decref(body);
	if (rc == 0)
		printf("user %s created (role %s)\n", name,
		       cli_str(json_object_get(out, "data"), "role"));
	json_decref(out);
	return rc;
}

/* DELETE, PUT {role} or POST password/reset of the user named name. */
static int auth__users_change(cli_t *c, const char *name, const char *what)
{
	char path[128], password[PASSWORD_MAX];
	json_t *out = NULL, *body = NULL;
	long long id = auth__user_id(c, name);
	int rc = 0;
	if (id < 0)
		return 1;
	if (!strcmp(what, "delete")) {
		snprintf(path, sizeof(path), "/api/auth/users/%lld", id);
		rc = cli_api(c, "DELETE", path, NULL, &out);
	} else if (!strcmp(what, "passwd")) {
		if ((rc = cli_read_secret(c, "new password: ", password, sizeof(password))) != 0)
			return rc;
		body = json_pack("{s:s}", "newPassword", password);
		memset(password, 0, sizeof(password));
		snprintf(path, sizeof(path), "/api/auth/password/reset/%lld", id);
		rc = cli_api(c, "POST", path, body, &out);
	} else {
		body = json_pack("{s:s}", "role", c->args[2]);
		snprintf(path, sizeof(path), "/api/auth/users/%lld", id);
		rc = cli_api(c, "PUT", path, body, &out);
	}
	json_decref(body);
	json_decref(out);
	if (rc == 0)
		printf("user %s: %s done\n", name, what);
	return rc;
}

/* Your own password: the old one, then the new one. */
static int auth__passwd_self(cli_t *c)
{
	char old[PASSWORD_MAX], pw[PASSWORD_MAX];
	json_t *out = NULL;
	int rc = cli_read_secret(c, "current password: ", old, sizeof(old));
	if (rc == 0)
		rc = cli_read_secret(c, "new password: ", pw, sizeof(pw));
	if (rc != 0)
		return rc;
	json_t *body = json_pack("{s:s, s:s}", "oldPassword", old, "newPassword", pw);
	memset(old, 0, sizeof(old));
	memset(pw, 0, sizeof(pw));
	rc = cli_api(c, "POST", "/api/auth/password/change", body, &out);
	json_decref(body);
	json_decref(out);
	if (rc == 0)
		printf("password changed (your other sessions are logged out)\n");
	return rc;
}

int cli_cmd_users(cli_t *c)
{
	const char *sub = c->args[0];
	int want = !strcmp(sub, "list")     ? 1
	           : !strcmp(sub, "create") ? 2
	           : !strcmp(sub, "delete") ? 2
	           : !strcmp(sub, "passwd") ? -1
	           : !strcmp(sub, "role")   ? 3
	                                    : 0;
	if (want == 0)
		return cli_usage(c, "users list|create|delete|passwd|role, not '%s'", sub);
	if ((want > 0 && c->nargs != want) || (want < 0 && c->nargs > 2))
		return cli_usage(c, "users %s: wrong number of arguments", sub);
	int rc = cli_client(c, false);
	if (rc != 0)
		return rc;
	if (!strcmp(sub, "list"))
		return auth__users_list(c);
	if (!strcmp(sub, "create"))
		return auth__users_create(c, c->args[1]);
	if (!strcmp(sub, "passwd") && c->nargs == 1)
		return auth__passwd_self(c);
	return auth__users_change(c, c->args[1], sub);
}
