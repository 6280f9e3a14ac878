from bench.feed.run import main

main()
