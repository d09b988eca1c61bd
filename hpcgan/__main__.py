from hpcgan.cli.main import main

raise SystemExit(main())
