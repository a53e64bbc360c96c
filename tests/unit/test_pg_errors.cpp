// The pg layer's pure parts: error classification by SQLSTATE and connection status,
// conninfo redaction, and strict parsing of the numbers the server sends.
#include <gtest/gtest.h>

#include <string>

#include "pg/conninfo.h"
#include "pg/server_error.h"
#include "pg/text_value.h"
#include "pgseed/error.h"

namespace pgseed {
namespace {

using pg::classify_error;

TEST(ClassifyError, TransientByState) {
  for (const char* s : {"08000", "08003", "08006", "08P01", "57P01", "57P02", "57P03", "53300"}) {
    auto c = classify_error(s, false);
    EXPECT_TRUE(c.transient) << s;
    EXPECT_EQ(c.category, ErrorCategory::kConnection) << s;
  }
  for (const char* s : {"55006", "40001", "40P01"}) EXPECT_TRUE(classify_error(s, false).transient) << s;
}

TEST(ClassifyError, PermanentByState) {
  struct Case {
    const char* state;
    ErrorCategory category;
  } cases[] = {{"28P01", ErrorCategory::kAuthentication}, {"28000", ErrorCategory::kAuthentication},
               {"42501", ErrorCategory::kAuthentication}, {"42704", ErrorCategory::kConfiguration},
               {"42P01", ErrorCategory::kConfiguration},  {"3D000", ErrorCategory::kConfiguration},
               {"55000", ErrorCategory::kSourceState},    {"XX000", ErrorCategory::kSourceState}};
  for (const auto& c : cases) {
    // Also when the server closed the connection after sending it (a FATAL error).
    for (bool lost : {false, true}) {
      auto got = classify_error(c.state, lost);
      EXPECT_FALSE(got.transient) << c.state;
      EXPECT_EQ(got.category, c.category) << c.state;
    }
  }
}

TEST(ClassifyError, NoStateGoesByConnectionStatus) {
  EXPECT_TRUE(classify_error("", true).transient);
  EXPECT_EQ(classify_error("", true).category, ErrorCategory::kConnection);
  EXPECT_FALSE(classify_error("", false).transient);
}

TEST(ErrorFromResult, ClosedConnectionIsTransient) {
  Error e = pg::error_from_result(nullptr, nullptr, "reading");
  EXPECT_TRUE(e.transient());
  EXPECT_EQ(e.category(), ErrorCategory::kConnection);
}

TEST(TakeSqlstate, FromVerboseConnectMessages) {
  std::string m =
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  28P01: password "
      "authentication failed for user \"u\"\nLOCATION:  auth_failed, auth.c:326\n";
  EXPECT_EQ(pg::take_sqlstate(m), "28P01");
  EXPECT_EQ(pg::first_line(m),
            "connection to server at \"127.0.0.1\", port 5432 failed: password authentication "
            "failed for user \"u\"");
  std::string starting = "FATAL:  57P03: the database system is starting up\n";
  EXPECT_EQ(pg::take_sqlstate(starting), "57P03");
  std::string refused = "connection to server at \"h\", port 1 failed: Connection refused\n";
  EXPECT_EQ(pg::take_sqlstate(refused), "");
  EXPECT_EQ(refused, "connection to server at \"h\", port 1 failed: Connection refused\n");
  std::string lower = "ERROR:  abcde: not a code";
  EXPECT_EQ(pg::take_sqlstate(lower), "");
}

TEST(RedactConninfo, RemovesPasswords) {
  std::string r = pg::redact_conninfo("host=h user=u password=secret1 sslpassword=secret2 dbname=d");
  EXPECT_EQ(r.find("secret"), std::string::npos) << r;
  EXPECT_NE(r.find("host=h"), std::string::npos) << r;
  EXPECT_NE(r.find("user=u"), std::string::npos) << r;
}

TEST(RedactConninfo, RemovesUriPasswords) {
  for (const std::string uri :
       {"postgresql://user:secret@host/db", "postgres://user:secret@host:5433/db?sslmode=disable",
        "postgresql://user@host/db?password=secret", "postgresql://user@host/db?sslpassword=secret",
        "postgresql://user:secret@h1:5432,h2:5433/db"}) {
    std::string r = pg::redact_conninfo(uri);
    EXPECT_EQ(r.find("secret"), std::string::npos) << uri << " -> " << r;
    EXPECT_NE(r.find("user=user"), std::string::npos) << uri << " -> " << r;
  }
}

TEST(HostChoice, CountsHostsAndTheWriteTarget) {
  EXPECT_EQ(pg::host_choice("host=a dbname=d").hosts, 1);
  EXPECT_EQ(pg::host_choice("dbname=d").hosts, 1);
  pg::HostChoice c = pg::host_choice("host=a,b port=1,2 dbname=d");
  EXPECT_EQ(c.hosts, 2);
  EXPECT_FALSE(c.writable_only);
  c = pg::host_choice("host=a,b,c dbname=d target_session_attrs=read-write");
  EXPECT_EQ(c.hosts, 3);
  EXPECT_TRUE(c.writable_only);
  c = pg::host_choice("postgresql://h1:5432,h2:5433/db?target_session_attrs=primary");
  EXPECT_EQ(c.hosts, 2);
  EXPECT_TRUE(c.writable_only);
  EXPECT_FALSE(pg::host_choice("host=a,b target_session_attrs=any").writable_only);
  EXPECT_EQ(pg::host_choice("host='unterminated").hosts, 1);
}

TEST(RedactConninfo, RemovesPasswordsOfAUriGivenAsDbname) {
  for (const std::string c : {"dbname=postgresql://user:secret@host/db port=5",
                              "dbname='host=h password=secret' user=u"}) {
    std::string r = pg::redact_conninfo(c);
    EXPECT_EQ(r.find("secret"), std::string::npos) << c << " -> " << r;
  }
  EXPECT_NE(pg::redact_conninfo("dbname=postgresql://user:secret@host/db").find("host=host"),
            std::string::npos);
}

TEST(RedactConninfo, Unparsable) {
  EXPECT_EQ(pg::redact_conninfo("host='unterminated password=secret"), "(unparsable conninfo)");
}

TEST(TextValue, ParsesStrictly) {
  EXPECT_EQ(pg::parse_int64("-12", "x"), -12);
  EXPECT_EQ(pg::parse_uint32("4294967295", "x"), 4294967295u);
  EXPECT_EQ(pg::parse_int32("7", "x"), 7);
  for (const char* bad : {"", "12a", " 1", "1.5", "99999999999999999999"}) {
    try {
      pg::parse_int64(bad, "a size");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::kDecode);
      EXPECT_NE(std::string(e.what()).find("a size"), std::string::npos);
    }
  }
  EXPECT_THROW(pg::parse_uint32("-1", "x"), Error);
  EXPECT_THROW(pg::parse_uint32("4294967296", "x"), Error);
}

}  // namespace
}  // namespace pgseed
