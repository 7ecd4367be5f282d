// The credentials of a run (docs/credentials.md): `millions up` generates each one on first use
// into RUN/secrets (a directory 0700, one file a secret, 0600: 256 random bits as 64 hex digits)
// and reads it back on every later start and on adoption, so a restarted runner and the engines'
// data agree. Recipes write what the engines need from them (Patroni's YAML, Redis' ACL file,
// NATS' configuration, libpq's passfiles) 0600, owned by the user the engine runs as. Nothing
// here prints or logs a secret, and no secret goes on a command line.
// Thread-safety: functions only; two threads creating the same secret get the same one (the
// file is linked into place, never overwritten). Ownership: the caller owns the strings.
#pragma once

#include <string>
#include <vector>

namespace millions::ctl::secrets {

// Names of the secrets (files under RUN/secrets).
inline constexpr const char* kPgSuperuser = "pg_superuser";      // Patroni's superuser (postgres)
inline constexpr const char* kPgReplication = "pg_replication";  // Patroni's replicator
inline constexpr const char* kPgApp = "pg_app";                  // the application's role
inline constexpr const char* kEtcdRoot = "etcd_root";            // etcd's root user
inline constexpr const char* kEtcdPatroni = "etcd_patroni";      // Patroni's etcd user
inline constexpr const char* kEtcdShardMap = "etcd_shardmap";    // the shard map's etcd user
inline constexpr const char* kPatroniRest = "patroni_rest";      // Patroni's REST API writes
// libpq passfiles: every role (the runner, an operator's psql) and the application's only (the
// web nodes and workers, through PGPASSFILE).
inline constexpr const char* kPgPassAll = "pgpass";
inline constexpr const char* kPgPassApp = "pgpass.app";

// Every secret a deployment may use, by name (the above, NATS' and Redis' users).
const std::vector<std::string>& All();
// On a topology of several hosts (docs/deploy.md, "Beyond one machine"), every host must hold the
// same secrets: the first host's `up` makes them all at once, before it starts anything, and the
// other hosts' `up` refuses to start until they are copied there. EnsureAll: every one of All()
// made when missing (throws as Get). Missing: the names of All() that `run_dir` lacks.
void EnsureAll(const std::string& run_dir);
std::vector<std::string> Missing(const std::string& run_dir);

// RUN/secrets.
std::string Dir(const std::string& run_dir);
// The path of secret `name`.
std::string Path(const std::string& run_dir, const std::string& name);
// The secret `name`: read, or generated once (256 bits from the system's generator). Throws
// std::runtime_error when it can neither read nor create it (start-up).
std::string Get(const std::string& run_dir, const std::string& name);
// Writes `text` to `path` with mode 0600 (owned by `user` when not empty), replacing it whole
// (a temporary file renamed into place). Throws std::runtime_error when it cannot.
void WriteFile(const std::string& path, const std::string& text, const std::string& user);
// A line of a libpq passfile: any host, port and database, this user and password (':' and '\'
// escaped as libpq reads them).
std::string PgPassLine(const std::string& user, const std::string& password);
// Writes RUN/secrets/pgpass (superuser, replication and application roles) and pgpass.app (the
// application's role only) from the secrets, creating those that are missing.
void WritePgPassFiles(const std::string& run_dir, const std::string& app_user);

// Standard base64 (etcd's keys, HTTP Basic credentials).
std::string Base64(const std::string& s);
// The Authorization header for Patroni's REST API writes (user `millions`, the run's
// patroni_rest secret); empty when the run has no such secret (it is never created here).
std::string PatroniRestAuthorization(const std::string& run_dir);

// The environment of a node of ours that talks to the engines (web, worker): the directory of
// secrets (MILLIONS_SECRETS, core/secret.h) and libpq's passfile for the application's role.
// Paths only: a secret never goes into an environment or onto a command line.
std::vector<std::string> NodeEnv(const std::string& run_dir);

}  // namespace millions::ctl::secrets
