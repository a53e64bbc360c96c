# Makes pgseed.1 with help2man from `pgseed --help`, with each subcommand's --help in a
# COMMANDS section (help2man reads only the top-level help by itself).
#   cmake -DPGSEED=<binary> -DHELP2MAN=<help2man> -DEXTRA=<static .h2m> -DOUT=<pgseed.1> -P man_page.cmake
foreach(v PGSEED HELP2MAN EXTRA OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "man_page.cmake: ${v} is not set")
  endif()
endforeach()

execute_process(COMMAND ${PGSEED} --help OUTPUT_VARIABLE top RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man_page.cmake: ${PGSEED} --help failed")
endif()
# The subcommands, as the top-level help lists them ("  sync    Create the slot...").
string(REGEX REPLACE ".*\nSubcommands:\n" "" listing "${top}")
string(REGEX REPLACE "\n\n.*" "" listing "${listing}")
string(REGEX MATCHALL "(^|\n)  [a-z]+ " names "${listing}")

set(include "[COMMANDS]\n")
foreach(n ${names})
  string(STRIP "${n}" n)
  execute_process(COMMAND ${PGSEED} ${n} --help OUTPUT_VARIABLE help RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "man_page.cmake: ${PGSEED} ${n} --help failed")
  endif()
  # The footer common to every command is in the top-level part already.
  string(REGEX REPLACE "\nSTORE is sqlite:PATH.*" "\n" help "${help}")
  # roff: backslashes escaped, no line taken for a request.
  string(REPLACE "\\" "\\e" help "${help}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" help "${help}")
  string(APPEND include ".SS \"pgseed ${n}\"\n.nf\n${help}.fi\n")
endforeach()
file(READ ${EXTRA} extra)
file(WRITE ${OUT}.h2m "${include}\n${extra}")

execute_process(
  COMMAND ${HELP2MAN} --no-info --section=1
          "--name=replicate PostgreSQL tables into SQLite or RocksDB and keep them current"
          --include=${OUT}.h2m --output=${OUT} ${PGSEED}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "man_page.cmake: help2man failed")
endif()
