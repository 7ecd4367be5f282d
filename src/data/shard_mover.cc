#include "data/shard_mover.h"

#include <algorithm>
#include <cstdlib>
#include <future>
#include <map>
#include <set>
#include <thread>
#include <tuple>

#include "core/stable_hash.h"
#include "data/shard_rows.h"

namespace millions::data {
using shard_rows::AppendCopy;
using shard_rows::Columns;
using shard_rows::ExecKeys;
using shard_rows::FindTable;
using shard_rows::HashedKeys;
using shard_rows::InTx;
using shard_rows::Key;
using shard_rows::KeyMatch;
using shard_rows::KeyOfRow;
using shard_rows::KeySet;
using shard_rows::kTables;
using shard_rows::SelectShard;
using shard_rows::Shard;
using shard_rows::Table;
using shard_rows::WriteTarget;

namespace {

// The first 64 bits of an md5 in hex.
uint64_t Digest64(const std::string& hex) {
  return std::strtoull(hex.substr(0, 16).c_str(), nullptr, 16);
}

struct Tally {
  int64_t rows = 0;
  uint64_t sum = 0;
  bool operator==(const Tally&) const = default;
};
using Tallies = std::map<std::string, Tally>;  // by group

int LogicalOf(int64_t id, int logical_shards) {
  return static_cast<int>((id >> 10) & 8191) % logical_shards;
}

}  // namespace

int LogicalShardOfKey(std::string_view key, int logical_shards) {
  return static_cast<int>(StableHash(key) % uint64_t(logical_shards));
}

std::string PgIntArray(const std::vector<int64_t>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(v[i]);
  }
  return out + "}";
}

std::string PgTextArray(const std::vector<std::string>& v) {
  std::string out = "{";
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += ',';
    out += '"';
    for (char ch : v[i]) {
      if (ch == '"' || ch == '\\') out += '\\';
      out += ch;
    }
    out += '"';
  }
  return out + "}";
}

ShardMover::ShardMover(pg::Conn& source, pg::Conn& target, int logical, MoverOptions options)
    : src_(source), dst_(target), logical_(logical), opt_(std::move(options)) {}

std::string ShardMover::BitsArray() const {
  std::vector<int64_t> bits;
  for (int b = logical_; b < 8192; b += opt_.logical_shards) bits.push_back(b);
  return PgIntArray(bits);
}

Status ShardMover::SettleOlderTransactions(pg::Conn& c) {
  auto now = c.Exec("rs_now", "SELECT clock_timestamp()::text", {});
  if (!now.ok()) return now.error();
  const std::string t = now->Text(0, 0);
  const auto deadline = std::chrono::steady_clock::now() + opt_.settle_timeout;
  for (;;) {
    auto r = c.Exec("rs_older",
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    " AND xact_start < $1::timestamptz AND application_name NOT LIKE $2",
                    {pg::P(t), pg::P(opt_.own_application_name + "%")});
    if (!r.ok()) return r.error();
    if (r->Int(0, 0) == 0) return Ok();
    if (std::chrono::steady_clock::now() > deadline)
      return MakeError(Errc::kUnavailable, "settle_timeout",
                       "shard " + std::to_string(logical_) + ": " + std::to_string(r->Int(0, 0)) +
                           " transactions older than the state change are still open");
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

Status ShardMover::PrepareTarget(int64_t map_version) {
  auto st = dst_.Exec("rs_state", "SELECT state FROM shard_ownership WHERE logical = $1",
                      {pg::P(int64_t{logical_})});
  if (!st.ok()) return st.error();
  if (!st->empty() && st->Text(0, 0) == "owned")
    return MakeError(Errc::kConflict, "target_owns_shard",
                     "the target owns logical shard " + std::to_string(logical_) + " already");
  auto in = dst_.Exec("rs_incoming",
                      "INSERT INTO shard_ownership(logical, state, map_version)"
                      " VALUES($1, 'incoming', $2) ON CONFLICT (logical) DO UPDATE"
                      " SET state = 'incoming' WHERE shard_ownership.state <> 'owned'",
                      {pg::P(int64_t{logical_}), pg::P(map_version)});
  if (!in.ok()) return in.error();
  auto purged = DeleteShardRows(dst_);
  if (!purged.ok()) return purged.error();
  return Ok();
}

Status ShardMover::StartCapture(int64_t map_version) {
  auto r = src_.Exec("rs_moving",
                     "UPDATE shard_ownership SET state = 'moving', map_version = $2"
                     " WHERE logical = $1 AND state IN ('owned', 'moving', 'frozen') RETURNING 1",
                     {pg::P(int64_t{logical_}), pg::P(map_version)});
  if (!r.ok()) return r.error();
  if (r->empty())
    return MakeError(Errc::kConflict, "source_lacks_shard",
                     "the source does not hold logical shard " + std::to_string(logical_));
  return SettleOlderTransactions(src_);
}

Result<CopyCounts> ShardMover::Copy() {
  CopyCounts counts;
  if (Status st = src_.Simple("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); !st.ok())
    return st.error();
  auto copy_table = [&](const Table& t) -> Status {
    const int ncols = Columns(t);
    std::string copy;
    int64_t n = 0;
    if (t.shard != Shard::kHash) {
      auto r = src_.Exec((std::string("rs_copy_") + t.name).c_str(), SelectShard(t, t.cols).c_str(),
                         {pg::P(BitsArray())});
      if (!r.ok()) return r.error();
      for (int i = 0; i < r->size(); ++i) AppendCopy(*r, i, ncols, &copy);
      n = r->size();
      if (Status st = WriteTarget(dst_, t, copy, {}); !st.ok()) return st;
    } else {
      auto keys = HashedKeys(src_, t, logical_, opt_.logical_shards);
      if (!keys.ok()) return keys.error();
      const size_t batch =
          static_cast<size_t>(std::string_view(t.name) == "blobs" ? opt_.blob_batch : 1000);
      const std::string sql =
          std::string("SELECT ") + t.cols + " FROM " + t.name + " WHERE " + KeyMatch(t);
      for (size_t at = 0; at < keys->size(); at += batch) {
        std::vector<Key> part(keys->begin() + at,
                              keys->begin() + std::min(keys->size(), at + batch));
        auto r = ExecKeys(src_, t, std::string("rs_rows_") + t.name, sql, part);
        if (!r.ok()) return r.error();
        copy.clear();
        for (int i = 0; i < r->size(); ++i) AppendCopy(*r, i, ncols, &copy);
        n += r->size();
        if (Status st = WriteTarget(dst_, t, copy, {}); !st.ok()) return st;
      }
    }
    counts.rows += n;
    if (std::string_view(t.name) == "users") counts.users += n;
    return Ok();
  };
  for (const auto& t : kTables) {
    if (Status st = copy_table(t); !st.ok()) {
      (void)src_.Simple("ROLLBACK");
      return st.error();
    }
  }
  if (Status st = src_.Simple("COMMIT"); !st.ok()) return st.error();
  return counts;
}

Result<ReplayCounts> ShardMover::Replay(int64_t after_seq) {
  ReplayCounts out;
  out.applied_seq = after_seq;
  auto top =
      src_.Exec("rs_top", "SELECT COALESCE(max(seq), 0) FROM shard_changes WHERE logical = $1",
                {pg::P(int64_t{logical_})});
  if (!top.ok()) return top.error();
  const int64_t until = top->Int(0, 0);
  if (until <= after_seq) return out;
  // Every change up to `until` is committed (or rolled back) once the transactions open now
  // are over: a seq is drawn before its transaction commits.
  if (Status st = SettleOlderTransactions(src_); !st.ok()) return st.error();
  int64_t cursor = after_seq;
  for (;;) {
    auto ch = src_.Exec(
        "rs_changes",
        "SELECT seq, tbl, COALESCE(k1, 0), COALESCE(k2, 0), COALESCE(t1, ''),"
        " COALESCE(t2, '') FROM shard_changes"
        " WHERE logical = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4",
        {pg::P(int64_t{logical_}), pg::P(cursor), pg::P(until), pg::P(opt_.replay_batch)});
    if (!ch.ok()) return ch.error();
    if (ch->empty()) break;
    std::map<const Table*, KeySet> by_table;
    for (int i = 0; i < ch->size(); ++i) {
      cursor = ch->Int(i, 0);
      const Table* t = FindTable(ch->Text(i, 1));
      if (!t)
        return MakeError(Errc::kInternal, "unknown_table",
                         "shard_changes names table " + ch->Text(i, 1));
      by_table[t].insert(Key{ch->Int(i, 2), ch->Int(i, 3), ch->Text(i, 4), ch->Text(i, 5)});
    }
    for (const auto& [t, set] : by_table) {
      std::vector<Key> keys(set.begin(), set.end());
      const std::string sql =
          std::string("SELECT ") + t->cols + " FROM " + t->name + " WHERE " + KeyMatch(*t);
      auto r = ExecKeys(src_, *t, std::string("rs_rows_") + t->name, sql, keys);
      if (!r.ok()) return r.error();
      std::string copy;
      KeySet found;
      for (int i = 0; i < r->size(); ++i) {
        AppendCopy(*r, i, Columns(*t), &copy);
        found.insert(KeyOfRow(*t, *r, i));
      }
      std::vector<Key> gone;
      for (const auto& k : keys)
        if (!found.count(k)) gone.push_back(k);
      if (Status st = WriteTarget(dst_, *t, copy, gone); !st.ok()) return st.error();
      out.changes += static_cast<int64_t>(keys.size());
      out.rows += r->size() + static_cast<int64_t>(gone.size());
    }
  }
  out.applied_seq = until;
  return out;
}

Status ShardMover::Freeze() {
  auto r = src_.Exec("rs_freeze",
                     "UPDATE shard_ownership SET state = 'frozen'"
                     " WHERE logical = $1 AND state IN ('moving', 'frozen') RETURNING 1",
                     {pg::P(int64_t{logical_})});
  if (!r.ok()) return r.error();
  if (r->empty())
    return MakeError(Errc::kConflict, "not_moving",
                     "logical shard " + std::to_string(logical_) + " is not moving on the source");
  return SettleOlderTransactions(src_);
}

Result<VerifyReport> ShardMover::Verify() {
  // Follow edges whose other end the target owns are the target's own, kept by the web nodes on
  // both clusters (a follow in flight may have written one side only): not the move's to verify.
  std::set<int> target_owned;
  {
    auto r = dst_.Exec("rs_owned", "SELECT logical FROM shard_ownership WHERE state = 'owned'", {});
    if (!r.ok()) return r.error();
    for (int i = 0; i < r->size(); ++i) target_owned.insert(static_cast<int>(r->Int(i, 0)));
  }
  const int L = opt_.logical_shards;
  auto edge_moves = [&](int64_t a, int64_t b) {
    const int la = LogicalOf(a, L), lb = LogicalOf(b, L);
    if (la != logical_ && target_owned.count(la)) return false;
    if (lb != logical_ && target_owned.count(lb)) return false;
    return true;
  };
  auto tally = [&](pg::Conn& c, const Table& t, Tallies* out) -> Status {
    if (t.shard == Shard::kHash) {
      // The keys alone are scanned; the rows (a blob's bytes) are read for the shard's keys.
      auto keys = HashedKeys(c, t, logical_, opt_.logical_shards);
      if (!keys.ok()) return keys.error();
      const std::string sql = std::string("SELECT (") + t.group + ")::text, " + t.digest +
                              " FROM " + t.name + " t WHERE " + KeyMatch(t);
      for (size_t at = 0; at < keys->size(); at += 1000) {
        std::vector<Key> part(keys->begin() + at,
                              keys->begin() + std::min(keys->size(), at + 1000));
        auto r = ExecKeys(c, t, std::string("rs_vhash_") + t.name, sql, part);
        if (!r.ok()) return r.error();
        for (int i = 0; i < r->size(); ++i) {
          Tally& x = (*out)[r->Text(i, 0)];
          ++x.rows;
          x.sum += Digest64(r->Text(i, 1));
        }
      }
      return Ok();
    }
    if (t.shard == Shard::kEdge) {
      auto r = c.Exec("rs_vedges", SelectShard(t, "follower, followee, md5(t::text)").c_str(),
                      {pg::P(BitsArray())});
      if (!r.ok()) return r.error();
      for (int i = 0; i < r->size(); ++i) {
        const int64_t a = r->Int(i, 0), b = r->Int(i, 1);
        if (!edge_moves(a, b)) continue;
        Tally& x = (*out)[std::to_string(LogicalOf(a, L) == logical_ ? a : b)];
        ++x.rows;
        x.sum += Digest64(r->Text(i, 2));
      }
      return Ok();
    }
    auto r = c.Exec((std::string("rs_vrows_") + t.name).c_str(),
                    SelectShard(t, std::string("(") + t.group + ")::text, " + t.digest).c_str(),
                    {pg::P(BitsArray())});
    if (!r.ok()) return r.error();
    for (int i = 0; i < r->size(); ++i) {
      Tally& x = (*out)[r->Text(i, 0)];
      ++x.rows;
      x.sum += Digest64(r->Text(i, 1));
    }
    return Ok();
  };
  // Both sides at once, each on its own connection, every table in turn: the verify is part of
  // the write pause, which is then the slower side's time, not a sum over tables of each
  // table's slower side.
  constexpr size_t kN = std::size(kTables);
  std::vector<Tallies> on_src(kN), on_dst(kN);
  auto all = [&](pg::Conn& c, std::vector<Tallies>* out) -> Status {
    for (size_t i = 0; i < kN; ++i)
      if (Status st = tally(c, kTables[i], &(*out)[i]); !st.ok()) return st;
    return Ok();
  };
  auto target = std::async(std::launch::async, [&] { return all(dst_, &on_dst); });
  Status source = all(src_, &on_src);
  Status target_done = target.get();
  if (!source.ok()) return source.error();
  if (!target_done.ok()) return target_done.error();
  VerifyReport report;
  for (size_t i = 0; i < kN; ++i) {
    const Table& t = kTables[i];
    const Tallies& a = on_src[i];
    const Tallies& b = on_dst[i];
    for (const auto& [g, x] : a) {
      report.rows += x.rows;
      if (std::string_view(t.name) == "users") report.users += x.rows;
    }
    std::set<std::string> groups;
    for (const auto& [g, x] : a) groups.insert(g);
    for (const auto& [g, x] : b) groups.insert(g);
    for (const auto& g : groups) {
      const Tally x = a.count(g) ? a.at(g) : Tally{}, y = b.count(g) ? b.at(g) : Tally{};
      if (x == y) continue;
      char buf[64];
      std::string m =
          std::string(t.name) + " of " + g + ": source " + std::to_string(x.rows) + " rows";
      std::snprintf(buf, sizeof buf, " (checksum %016llx)", static_cast<unsigned long long>(x.sum));
      m += buf;
      m += ", target " + std::to_string(y.rows) + " rows";
      std::snprintf(buf, sizeof buf, " (checksum %016llx)", static_cast<unsigned long long>(y.sum));
      m += buf;
      report.mismatches.push_back(std::move(m));
    }
  }
  return report;
}

Status ShardMover::MarkTargetFrozen(int64_t map_version) {
  auto r = dst_.Exec("rs_frozen_here",
                     "INSERT INTO shard_ownership(logical, state, map_version)"
                     " VALUES($1, 'frozen', $2) ON CONFLICT (logical) DO UPDATE"
                     " SET state = 'frozen', map_version = EXCLUDED.map_version",
                     {pg::P(int64_t{logical_}), pg::P(map_version)});
  if (!r.ok()) return r.error();
  return Ok();
}

Status ShardMover::MarkTargetOwned(int64_t map_version) {
  auto r = dst_.Exec("rs_owned_here",
                     "INSERT INTO shard_ownership(logical, state, map_version)"
                     " VALUES($1, 'owned', $2) ON CONFLICT (logical) DO UPDATE"
                     " SET state = 'owned', map_version = EXCLUDED.map_version",
                     {pg::P(int64_t{logical_}), pg::P(map_version)});
  if (!r.ok()) return r.error();
  return Ok();
}

Status ShardMover::DropSource(int64_t map_version) {
  auto r = src_.Exec("rs_gone",
                     "UPDATE shard_ownership SET state = 'gone', map_version = $2"
                     " WHERE logical = $1",
                     {pg::P(int64_t{logical_}), pg::P(map_version)});
  if (!r.ok()) return r.error();
  return Ok();
}

Result<int64_t> ShardMover::DeleteShardRows(pg::Conn& c) {
  // The logical shards this cluster holds or receives, but this one: edges towards them stay.
  auto keep = c.Exec("rs_keep",
                     "SELECT logical FROM shard_ownership WHERE logical <> $1"
                     " AND state IN ('owned', 'moving', 'frozen', 'incoming')",
                     {pg::P(int64_t{logical_})});
  if (!keep.ok()) return keep.error();
  std::vector<int64_t> kept;
  for (int i = 0; i < keep->size(); ++i) kept.push_back(keep->Int(i, 0));
  const std::string kept_array = PgIntArray(kept), bits = BitsArray();
  int64_t deleted = 0;
  for (const auto& t : kTables) {
    if (t.shard == Shard::kHash) {
      auto keys = HashedKeys(c, t, logical_, opt_.logical_shards);
      if (!keys.ok()) return keys.error();
      const size_t batch = static_cast<size_t>(opt_.cleanup_batch);
      for (size_t at = 0; at < keys->size(); at += batch) {
        std::vector<Key> part(keys->begin() + at,
                              keys->begin() + std::min(keys->size(), at + batch));
        if (Status st = WriteTarget(c, t, "", part); !st.ok()) return st.error();
        deleted += static_cast<int64_t>(part.size());
      }
      continue;
    }
    std::string where;
    if (t.shard == Shard::kEdge) {
      where =
          "(((follower >> 10) & 8191) = ANY($1::int[]) OR ((followee >> 10) & 8191) = "
          "ANY($1::int[])) AND NOT ((((follower >> 10) & 8191) <> ALL($1::int[]) AND "
          "(((follower >> 10) & 8191) % $3) = ANY($4::int[])) OR (((followee >> 10) & 8191) <> "
          "ALL($1::int[]) AND (((followee >> 10) & 8191) % $3) = ANY($4::int[])))";
    } else {
      where = std::string("((") + t.shard_col + " >> 10) & 8191) = ANY($1::int[])";
    }
    const std::string sql = std::string("DELETE FROM ") + t.name +
                            " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " + t.name + " WHERE " +
                            where + " LIMIT $2))";
    for (;;) {
      int64_t n = 0;
      Status st = InTx(c, [&]() -> Status {
        const std::string name = std::string("rs_purge_") + t.name;
        auto r = t.shard == Shard::kEdge
                     ? c.Exec(name.c_str(), sql.c_str(),
                              {pg::P(bits), pg::P(opt_.cleanup_batch),
                               pg::P(int64_t{opt_.logical_shards}), pg::P(kept_array)})
                     : c.Exec(name.c_str(), sql.c_str(), {pg::P(bits), pg::P(opt_.cleanup_batch)});
        if (!r.ok()) return r.error();
        n = r->affected();
        return Ok();
      });
      if (!st.ok()) return st.error();
      deleted += n;
      if (n < opt_.cleanup_batch) break;
    }
  }
  return deleted;
}

Result<int64_t> ShardMover::Cleanup(int64_t after_seq) {
  auto replayed = Replay(after_seq);
  if (!replayed.ok()) return replayed.error();
  auto deleted = DeleteShardRows(src_);
  if (!deleted.ok()) return deleted;
  // The ownership row first: from then on no write here captures a change of this shard (an
  // edge towards it from a shard kept here is an edge like any other). A write that read the
  // row as `gone` before may still append one: once those are over, the changes left are
  // replayed, then dropped. (Dropping them before the row left a change behind that nobody
  // replayed: reshard_itest found one.)
  auto r = src_.Exec("rs_forget",
                     "DELETE FROM shard_ownership WHERE logical = $1 AND state = 'gone'"
                     " AND EXISTS (SELECT 1 FROM shard_ownership WHERE logical <> $1)",
                     {pg::P(int64_t{logical_})});
  if (!r.ok()) return r.error();
  if (Status st = SettleOlderTransactions(src_); !st.ok()) return st.error();
  if (auto last = Replay(replayed->applied_seq); !last.ok()) return last.error();
  for (;;) {
    auto c = src_.Exec("rs_clear_changes",
                       "DELETE FROM shard_changes WHERE seq = ANY(ARRAY(SELECT seq FROM"
                       " shard_changes WHERE logical = $1 LIMIT $2))",
                       {pg::P(int64_t{logical_}), pg::P(opt_.cleanup_batch)});
    if (!c.ok()) return c.error();
    if (c->affected() < opt_.cleanup_batch) break;
  }
  return deleted;
}

}  // namespace millions::data
