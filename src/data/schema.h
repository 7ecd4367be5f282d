// The schema of both dialects, written once: versioned migrations (index i brings a database
// from version i to i+1; never edit a shipped entry, append a new one) rendered for SQLite or
// PostgreSQL. The few differences are named placeholders, listed in schema.cc.
// Thread-safety: pure functions. Ownership: returns owned strings.
#pragma once

#include <string>
#include <vector>

namespace millions::data {

enum class Dialect { kSqlite, kPostgres };

// The migrations, in order, as statements of `dialect` (several per entry, ';'-separated).
std::vector<std::string> Migrations(Dialect dialect);

}  // namespace millions::data
