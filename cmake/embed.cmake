# Turn a file into a C source defining `const char NAME[]` (NUL-terminated)
# and `const size_t NAME_len`, so the binary serves exactly the document it
# was built with.  Run as: cmake -DIN=file -DOUT=file.c -DNAME=sym -P embed.cmake
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hex_len)
math(EXPR len "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUT}"
  "/* Generated from ${IN} by cmake/embed.cmake: do not edit. */\n"
  "#include <stddef.h>\n"
  "const char ${NAME}[] = {${bytes}0x00};\n"
  "const size_t ${NAME}_len = ${len};\n")
