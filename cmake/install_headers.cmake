# Installs pool's public headers (pool/*.h) and the detail/ headers they include, as the compiler
# lists them (-MM), so that an install holds what users' code needs and nothing else.
# Set by CMakeLists.txt: pool_compiler, pool_source_dir, pool_public_headers,
# pool_binary_dir, pool_include_dir.
set(includes "")
foreach(header IN LISTS pool_public_headers)
  file(RELATIVE_PATH header "${pool_source_dir}" "${header}")
  string(APPEND includes "#include \"${header}\"\n")
endforeach()
set(probe "${pool_binary_dir}/pool_public_headers.cc")
file(WRITE "${probe}" "${includes}")
execute_process(
  COMMAND "${pool_compiler}" -std=c++20 -MM -MT headers -I. "${probe}"
  WORKING_DIRECTORY "${pool_source_dir}"
  OUTPUT_VARIABLE rule
  COMMAND_ERROR_IS_FATAL ANY)
string(REGEX REPLACE "[ \\\\\n]+" ";" headers "${rule}")
list(FILTER headers INCLUDE REGEX "^pool/.*\\.h$")
list(REMOVE_DUPLICATES headers)
list(SORT headers)
foreach(header IN LISTS headers)
  get_filename_component(folder "${header}" DIRECTORY)
  get_filename_component(name "${header}" NAME)
  # The file itself, also where the tree is a farm of symlinks (a Bazel sandbox).
  file(REAL_PATH "${pool_source_dir}/${header}" source)
  file(INSTALL "${source}" DESTINATION "${CMAKE_INSTALL_PREFIX}/${pool_include_dir}/${folder}"
       RENAME "${name}")
endforeach()
