import ArgumentParser

RLScale.main()
