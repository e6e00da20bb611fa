from rollout_cli.cli.app import main

main()
