sv_test_exe(test_config test_config.c)
add_test(NAME config_reader COMMAND test_config)
