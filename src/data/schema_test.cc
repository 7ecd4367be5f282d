// The shared schema renders, for each dialect, exactly the migrations that dialect's store ran
// before they were shared: a database migrated by an older binary sees the same versions.
#include "data/schema.h"

#include <gtest/gtest.h>

namespace millions::data {
namespace {

// Verbatim from pg_store.cc and sqlite_store.cc before the schema was shared. Never edit.
const char* const kPostgresBefore[] = {
    R"sql(
CREATE TABLE users(
  id BIGINT PRIMARY KEY, handle TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_ms BIGINT NOT NULL);
CREATE TABLE follows(
  follower BIGINT NOT NULL, followee BIGINT NOT NULL, created_ms BIGINT NOT NULL,
  PRIMARY KEY(follower, followee));
CREATE INDEX follows_by_followee ON follows(followee, follower);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY, user_id BIGINT NOT NULL, expires_ms BIGINT NOT NULL);
CREATE TABLE blobs(key TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes BYTEA NOT NULL);
CREATE TABLE photos(
  id BIGINT PRIMARY KEY, owner_id BIGINT NOT NULL, caption TEXT NOT NULL,
  media_key TEXT NOT NULL, content_type TEXT NOT NULL, width BIGINT NOT NULL,
  height BIGINT NOT NULL, created_ms BIGINT NOT NULL);
CREATE INDEX photos_by_owner ON photos(owner_id, id DESC);
CREATE TABLE photo_versions(
  photo_id BIGINT NOT NULL, job_id BIGINT NOT NULL, media_key TEXT NOT NULL,
  width BIGINT NOT NULL, height BIGINT NOT NULL, PRIMARY KEY(photo_id, job_id));
CREATE TABLE jobs(
  id BIGINT PRIMARY KEY, photo_id BIGINT NOT NULL, owner_id BIGINT NOT NULL,
  status TEXT NOT NULL, ops TEXT NOT NULL, result_key TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_ms BIGINT NOT NULL, finished_ms BIGINT NOT NULL DEFAULT 0,
  attempts BIGINT NOT NULL DEFAULT 0);
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
)sql",
    R"sql(
CREATE TABLE idempotency_keys(
  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INT NOT NULL,
  body TEXT NOT NULL, created_ms BIGINT NOT NULL, PRIMARY KEY(scope, key));
)sql",
};
const char* const kSqliteBefore[] = {
    R"sql(
CREATE TABLE users(
  id INTEGER PRIMARY KEY, handle TEXT NOT NULL UNIQUE, display_name TEXT NOT NULL,
  bio TEXT NOT NULL DEFAULT '', password_hash TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE follows(
  follower INTEGER NOT NULL, followee INTEGER NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY(follower, followee)) WITHOUT ROWID;
CREATE INDEX follows_by_followee ON follows(followee, follower);
CREATE TABLE sessions(
  token_hash TEXT PRIMARY KEY, user_id INTEGER NOT NULL, expires_ms INTEGER NOT NULL);
CREATE TABLE blobs(key TEXT PRIMARY KEY, content_type TEXT NOT NULL, bytes BLOB NOT NULL);
CREATE TABLE photos(
  id INTEGER PRIMARY KEY, owner_id INTEGER NOT NULL, caption TEXT NOT NULL,
  media_key TEXT NOT NULL, content_type TEXT NOT NULL, width INTEGER NOT NULL,
  height INTEGER NOT NULL, created_ms INTEGER NOT NULL);
CREATE INDEX photos_by_owner ON photos(owner_id, id DESC);
CREATE TABLE photo_versions(
  photo_id INTEGER NOT NULL, job_id INTEGER NOT NULL, media_key TEXT NOT NULL,
  width INTEGER NOT NULL, height INTEGER NOT NULL, PRIMARY KEY(photo_id, job_id));
CREATE TABLE jobs(
  id INTEGER PRIMARY KEY, photo_id INTEGER NOT NULL, owner_id INTEGER NOT NULL,
  status TEXT NOT NULL, ops TEXT NOT NULL, result_key TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0,
  attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX jobs_unfinished ON jobs(status) WHERE status IN ('queued', 'running');
)sql",
    R"sql(
CREATE TABLE idempotency_keys(
  scope TEXT NOT NULL, key TEXT NOT NULL, fingerprint TEXT NOT NULL, status INTEGER NOT NULL,
  body TEXT NOT NULL, created_ms INTEGER NOT NULL, PRIMARY KEY(scope, key)) WITHOUT ROWID;
)sql",
};

TEST(SchemaTest, RendersEachDialectAsShipped) {
  auto pg = Migrations(Dialect::kPostgres);
  ASSERT_GE(pg.size(), std::size(kPostgresBefore));
  for (size_t i = 0; i < std::size(kPostgresBefore); ++i)
    EXPECT_EQ(pg[i], kPostgresBefore[i]) << "migration " << i;
  auto lite = Migrations(Dialect::kSqlite);
  ASSERT_EQ(lite.size(), pg.size());
  for (size_t i = 0; i < std::size(kSqliteBefore); ++i)
    EXPECT_EQ(lite[i], kSqliteBefore[i]) << "migration " << i;
}

// Migration 3 (after the shared schema): IDs made in PostgreSQL, nothing in SQLite.
TEST(SchemaTest, IdFunctionOnlyInPostgres) {
  auto pg = Migrations(Dialect::kPostgres);
  auto lite = Migrations(Dialect::kSqlite);
  ASSERT_GE(pg.size(), 3u);
  EXPECT_NE(pg[2].find("CREATE FUNCTION millions_next_id"), std::string::npos);
  EXPECT_EQ(lite[2], "\nSELECT 1;\n");
}

TEST(SchemaTest, NoPlaceholderLeft) {
  for (Dialect d : {Dialect::kPostgres, Dialect::kSqlite})
    for (const auto& m : Migrations(d)) EXPECT_EQ(m.find('{'), std::string::npos) << m;
}

}  // namespace
}  // namespace millions::data
