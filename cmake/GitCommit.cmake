# SPDX-License-Identifier: MIT
# CERTBIND_GIT_COMMIT: the commit the tree was configured from, for
# `certbind --version`: `git rev-parse --short HEAD`, with "-dirty" when
# tracked files differ from it; "unknown" when the source is not a git
# checkout (a release tarball) or git is missing. Taken at configure time:
# run cmake again (scripts/setup.sh does) to refresh it.
set(CERTBIND_GIT_COMMIT "unknown")
find_package(Git QUIET)
if(GIT_FOUND)
  execute_process(
    COMMAND ${GIT_EXECUTABLE} rev-parse --short HEAD
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    OUTPUT_VARIABLE _commit
    RESULT_VARIABLE _rc
    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(_rc EQUAL 0 AND _commit MATCHES "^[0-9a-f]+$")
    set(CERTBIND_GIT_COMMIT ${_commit})
    execute_process(
      COMMAND ${GIT_EXECUTABLE} status --porcelain --untracked-files=no
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
      OUTPUT_VARIABLE _changes
      RESULT_VARIABLE _rc
      ERROR_QUIET)
    if(_rc EQUAL 0 AND NOT _changes STREQUAL "")
      string(APPEND CERTBIND_GIT_COMMIT "-dirty")
    endif()
  endif()
endif()
message(STATUS "certbind commit: ${CERTBIND_GIT_COMMIT}")
