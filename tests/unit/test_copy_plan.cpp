// plan_copy_units (how the initial copy cuts tables into block ranges), copy_query's
// ranges, and parse_byte_size (--split-tables-larger-than).
#include "sync/initial_copy.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "pg/catalog.h"
#include "pgseed/error.h"
#include "pgseed/sync.h"

namespace pgseed {
namespace {

constexpr int64_t kBlock = 8192;

pg::PublishedTable table(const std::string& name, int64_t blocks, char relkind = 'r') {
  pg::PublishedTable t;
  t.def.schema = "public";
  t.def.name = name;
  ColumnDef c;
  c.name = "id";
  t.def.columns.push_back(c);
  t.relkind = relkind;
  t.partitioned = relkind == 'p';
  t.heap_blocks = relkind == 'p' ? 0 : blocks;
  t.estimated_bytes = blocks * kBlock;
  t.heap_bytes = relkind == 'p' ? 0 : blocks * kBlock;
  return t;
}

// The units of table `ti`, in part order.
std::vector<CopyUnit> parts_of(const std::vector<CopyUnit>& units, size_t ti) {
  std::vector<CopyUnit> out(units.size());
  size_t n = 0;
  for (const auto& u : units)
    if (u.table == ti) out.at(size_t(u.part)) = u, ++n;
  out.resize(n);
  return out;
}

TEST(CopyPlan, SmallTablesStayWhole) {
  std::vector<pg::PublishedTable> ts = {table("a", 100), table("b", 8)};
  auto units = plan_copy_units(ts, 1 << 20, 4);
  ASSERT_EQ(units.size(), 2u);
  for (const auto& u : units) EXPECT_FALSE(u.range);
}

TEST(CopyPlan, RangesTileTheWholeHeapInOrder) {
  // 1000 blocks = ~7.8 MB; threshold 1 MB -> ceil(7.8) = 8 parts (cap 4 x 2 workers = 8).
  std::vector<pg::PublishedTable> ts = {table("big", 1000)};
  auto units = plan_copy_units(ts, 1 << 20, 2);
  auto parts = parts_of(units, 0);
  ASSERT_EQ(parts.size(), 8u);
  uint32_t next = 0;
  for (size_t p = 0; p < parts.size(); ++p) {
    ASSERT_TRUE(parts[p].range);
    EXPECT_EQ(parts[p].parts, 8);
    EXPECT_EQ(parts[p].range->first, next);
    if (p + 1 < parts.size()) {
      EXPECT_GT(parts[p].range->end, parts[p].range->first);
      next = parts[p].range->end;
    } else {
      EXPECT_EQ(parts[p].range->end, 0u) << "the last range is open-ended";
    }
  }
  EXPECT_EQ(parts[0].range->first, 0u);
}

TEST(CopyPlan, PartCountFollowsSizeWithAtLeastTwoAndACap) {
  // Just above the threshold: 2 parts.
  auto two = plan_copy_units({table("t", 129)}, 128 * kBlock, 8);
  EXPECT_EQ(two.size(), 2u);
  // ceil(1000 / 300) = 4 parts.
  auto four = plan_copy_units({table("t", 1000)}, 300 * kBlock, 8);
  EXPECT_EQ(four.size(), 4u);
  // At most 4 x workers parts.
  auto capped = plan_copy_units({table("t", 100000)}, kBlock, 3);
  EXPECT_EQ(capped.size(), 12u);
  // At most one part per block.
  auto tiny = plan_copy_units({table("t", 3)}, 1, 8);
  EXPECT_EQ(tiny.size(), 3u);
  // Exactly at the threshold: not split.
  auto at = plan_copy_units({table("t", 128)}, 128 * kBlock, 8);
  EXPECT_EQ(at.size(), 1u);
}

TEST(CopyPlan, NothingSplitWhenDisabledOrOneWorkerOrNotARegularTable) {
  EXPECT_EQ(plan_copy_units({table("t", 1000)}, 0, 4).size(), 1u);
  EXPECT_EQ(plan_copy_units({table("t", 1000)}, kBlock, 1).size(), 1u);
  EXPECT_EQ(plan_copy_units({table("p", 1000, 'p')}, kBlock, 4).size(), 1u);
  EXPECT_EQ(plan_copy_units({table("t", 1000)}, kBlock, 4, {true}).size(), 1u);
  auto unknown = table("t", 1000);
  unknown.heap_bytes = -1;
  EXPECT_EQ(plan_copy_units({unknown}, kBlock, 4).size(), 1u);
  // An inheritance parent: estimated_bytes counts its children; only its own heap counts.
  auto parent = table("parent", 10);
  parent.estimated_bytes = 1000 * kBlock;
  EXPECT_EQ(plan_copy_units({parent}, 100 * kBlock, 4).size(), 1u);
}

TEST(CopyPlan, LargestUnitsFirst) {
  // Threshold 1600 blocks: "big" (4800 blocks) in 3 parts of 1600; "mid" (1500) whole;
  // "small" (10) whole.
  std::vector<pg::PublishedTable> ts = {table("small", 10), table("mid", 1500), table("big", 4800)};
  auto units = plan_copy_units(ts, 1600 * kBlock, 4);
  ASSERT_EQ(units.size(), 5u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(units[i].table, 2u);
    EXPECT_EQ(units[i].part, int(i));  // equal parts keep their order
  }
  EXPECT_EQ(units[3].table, 1u);
  EXPECT_EQ(units[4].table, 0u);
  for (size_t i = 1; i < units.size(); ++i)
    EXPECT_GE(units[i - 1].estimated_bytes, units[i].estimated_bytes);
}

TEST(CopyPlan, CopyQueryCombinesRowFilterColumnsAndRange) {
  auto t = table("t", 10);
  ColumnDef c;
  c.name = "Name";
  t.def.columns.push_back(c);
  t.row_filter = "(id > 5) OR (id < 2)";
  EXPECT_EQ(pg::copy_query(t),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t WHERE ((id > 5) OR (id < 2))) TO STDOUT");
  EXPECT_EQ(pg::copy_query(t, pg::BlockRange{0, 4}),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t WHERE ((id > 5) OR (id < 2)) AND "
            "ctid < '(4,0)'::tid) TO STDOUT");
  EXPECT_EQ(pg::copy_query(t, pg::BlockRange{4, 8}),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t WHERE ((id > 5) OR (id < 2)) AND "
            "ctid >= '(4,0)'::tid AND ctid < '(8,0)'::tid) TO STDOUT");
  t.row_filter.clear();
  EXPECT_EQ(pg::copy_query(t, pg::BlockRange{8, 0}),
            "COPY (SELECT id, \"Name\" FROM ONLY public.t WHERE ctid >= '(8,0)'::tid) TO STDOUT");
}

// A plain table read whole with its columns as they are: the table form of COPY (no query
// to plan). Anything that needs a query keeps the SELECT form.
TEST(CopyPlan, CopyQueryUsesTheTableFormOnlyWhereItReadsTheSameRows) {
  auto t = table("t", 10);
  ColumnDef c;
  c.name = "Name";
  t.def.columns.push_back(c);
  EXPECT_EQ(pg::copy_query(t), "COPY public.t (id, \"Name\") TO STDOUT");
  std::vector<bool> no_casts = {false, false}, a_cast = {false, true};
  EXPECT_EQ(pg::copy_query(t, std::nullopt, &no_casts),
            "COPY public.t (id, \"Name\") TO STDOUT (FORMAT binary)");
  EXPECT_EQ(pg::copy_query(t, std::nullopt, &a_cast),
            "COPY (SELECT id, \"Name\"::pg_catalog.text FROM ONLY public.t) TO STDOUT (FORMAT binary)");
  auto generated = t;
  generated.generated_columns = true;
  EXPECT_EQ(pg::copy_query(generated), "COPY (SELECT id, \"Name\" FROM ONLY public.t) TO STDOUT");
  auto partitioned = t;
  partitioned.partitioned = true;
  partitioned.relkind = 'p';
  EXPECT_EQ(pg::copy_query(partitioned), "COPY (SELECT id, \"Name\" FROM public.t) TO STDOUT");
  auto no_columns = t;
  no_columns.def.columns.clear();
  EXPECT_EQ(pg::copy_query(no_columns), "COPY (SELECT  FROM ONLY public.t) TO STDOUT");
}

TEST(ByteSize, ParsesBytesAndUnits) {
  EXPECT_EQ(parse_byte_size("0"), 0u);
  EXPECT_EQ(parse_byte_size("1048576"), 1048576u);
  EXPECT_EQ(parse_byte_size("64kB"), 64u << 10);
  EXPECT_EQ(parse_byte_size("10 kB"), 10u << 10);
  EXPECT_EQ(parse_byte_size("64MB"), 64u << 20);
  EXPECT_EQ(parse_byte_size("256mb"), 256u << 20);
  EXPECT_EQ(parse_byte_size("2GB"), 2ull << 30);
  EXPECT_EQ(parse_byte_size("1 TB"), 1ull << 40);
  EXPECT_EQ(parse_byte_size("512B"), 512u);
  EXPECT_EQ(parse_byte_size("512 bytes"), 512u);
}

TEST(ByteSize, RejectsWithAConfigurationError) {
  for (const char* bad : {"", " ", "-1", "abc", "1.5GB", "10 XB", "64 M B", "MB",
                          "99999999999999999999", "20000000TB"}) {
    try {
      parse_byte_size(bad, "--split-tables-larger-than");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kConfiguration) << bad;
      EXPECT_NE(std::string(e.what()).find("--split-tables-larger-than"), std::string::npos);
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    }
  }
}

}  // namespace
}  // namespace pgseed
