// The runner's admin token: 256 random bits (libsodium's randombytes) as 64 hex characters in
// RUN_DIR/admin.token, mode 0600, made by the first `up` and reused after. Every request to the
// admin API but the dashboard's page carries it as `Authorization: Bearer TOKEN`; requests a
// browser marks as coming from another site are refused whatever they carry (docs/security.md).
// Thread-safety: pure functions and file reads. Ownership: values.
#pragma once

#include <optional>
#include <string>

#include "core/http.h"
#include "core/result.h"

namespace millions::ctl {

std::string AdminTokenPath(const std::string& run_dir);
// The token of `run_dir`, made first when missing (or when the file is not ours and private:
// a token someone else could have written or read is replaced).
Result<std::string> EnsureAdminToken(const std::string& run_dir);
// The token, or nullopt when the file cannot be read.
std::optional<std::string> ReadAdminToken(const std::string& run_dir);

// 0: allowed; else the status to answer (401 no or wrong token, 403 cross-site), with `code`.
int CheckAdminRequest(const http::Request& req, const std::string& token, std::string* code,
                      std::string* message);

}  // namespace millions::ctl
